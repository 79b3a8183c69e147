"""CSV import of accounts, events, tickets and survey answers (API.md, Ingestion: CSV).

A file is imported whole or not at all. It is read in chunks of ``CHUNK_ROWS`` rows; each chunk
goes through the same domain code as the API (so the validation is the API's), and all chunks
share one transaction (events are staged chunk by chunk and stored every ``STORE_EVERY_ROWS``
rows, ``ingestion.EventBatches``). Any bad row rolls the whole file back and is reported by its
line number in the file (the header is line 1), with the field and the message.

The import holds its transaction for the whole file, so the rows it touches (an event rollup's
day, a ticket, an account) stay locked until it commits: concurrent API writes to them wait.
"""

import contextlib
import csv
import datetime as dt
import io
import os
import re
import stat
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, NamedTuple

from django.contrib.auth import get_user_model
from django.db import DataError, transaction
from django.utils import timezone
from tqdm import tqdm

from accounts import ingestion
from accounts.changes import create_account, update_account
from accounts.models import Account, Team
from accounts.rows import BatchInvalid
from accounts.serializers import AccountSerializer

# Rows handed to one domain call: the API's batch limit, so a chunk is exactly an API batch.
CHUNK_ROWS = ingestion.MAX_EVENTS_PER_BATCH
# Events staged before they are stored (a bounded staging table, and progress in big files).
STORE_EVERY_ROWS = 50 * CHUNK_ROWS
# Errors reported for a refused file; reading stops once this many are found.
MAX_ERRORS_REPORTED = 50
# How often (in rows) the progress bar is moved; moving it on every row would cost more than it shows.
PROGRESS_EVERY_ROWS = 1_000

ACCOUNT_COLUMNS = (
    "external_id",
    "name",
    "domain",
    "segment",
    "tier",
    "arr",
    "currency",
    "owner",
    "team",
    "contract_start",
    "renewal_date",
    "status",
    "churned_at",
    "churn_reason",
)


@dataclass(frozen=True)
class Kind:
    columns: tuple[str, ...]
    required: tuple[str, ...]


# The columns of each kind are the JSON fields of the API, taken from the same definitions.
KINDS: dict[str, Kind] = {
    "accounts": Kind(columns=ACCOUNT_COLUMNS, required=("external_id", "name")),
    **{
        name: Kind(
            columns=tuple(f.name for f in fields),
            required=tuple(f.name for f in fields if f.required),
        )
        for name, fields in (
            ("events", ingestion.EVENT_FIELDS),
            ("tickets", ingestion.TICKET_FIELDS),
            ("surveys", ingestion.SURVEY_FIELDS),
        )
    },
}


class LineError(NamedTuple):
    """One problem in a file: its line (the header is line 1), the column if any, a message."""

    line: int
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class ImportRefused(Exception):
    """A file that was not imported; nothing of it was stored."""

    def __init__(self, errors: Sequence[LineError], *, stopped_early: bool = False):
        self.errors = sorted(errors, key=lambda error: error.line)[:MAX_ERRORS_REPORTED]
        # True when reading stopped at MAX_ERRORS_REPORTED (or an unreadable line): maybe more.
        self.stopped_early = stopped_early or len(errors) > MAX_ERRORS_REPORTED
        super().__init__(f"{len(self.errors)} error(s), first: {self.errors[0] if self.errors else ''}")

    def report(self, name: str) -> str:
        """The errors as lines of text for a human, headed by what happened."""
        if self.stopped_early:
            head = f"Nothing was imported from {name}; reading stopped after {len(self.errors)} error(s):"
        else:
            head = f"Nothing was imported from {name}; {len(self.errors)} error(s):"
        return "\n".join([head, *(f"  {error}" for error in self.errors)])


@dataclass(frozen=True)
class ImportSummary:
    kind: str
    rows: int
    created: int
    updated: int
    duplicates: int
    seconds: float
    ignored_columns: tuple[str, ...] = ()

    def __str__(self) -> str:
        created = "accepted" if self.kind in {"events", "surveys"} else "created"
        return (
            f"{self.kind}: {self.rows:,} row(s) read, {self.created:,} {created}, "
            f"{self.updated:,} updated, {self.duplicates:,} duplicate(s) in {self.seconds:.1f}s"
        )


def import_csv(
    *, kind: str, path_or_file: Any, progress: bool = False, now: dt.datetime | None = None
) -> ImportSummary:
    """Import one CSV file of ``kind`` in one transaction: all rows, or none and ``ImportRefused``.

    ``path_or_file`` is a path or an open file (binary, or text opened with ``newline=""``).
    The header is checked before any database work. Safe to run twice: events and surveys
    dedupe on their keys, tickets and accounts are upserts.
    """
    if kind not in KINDS:
        raise ValueError(f"Unknown kind {kind!r}: expected one of {', '.join(KINDS)}.")
    started = time.monotonic()
    now = now or timezone.now()
    with _open_text(path_or_file) as (text, counter, total_bytes):
        reader = csv.reader(text)
        header, ignored = _read_header(reader, KINDS[kind])
        bar = tqdm(
            total=total_bytes,
            unit="B" if counter else " rows",
            unit_scale=True,
            unit_divisor=1024 if counter else 1000,
            desc=f"Importing {kind}",
            file=sys.stderr,
            # None: shown on a terminal, hidden when stderr is a file or a pipe.
            disable=None if progress else True,
            **_bar_size(),
        )
        with bar, transaction.atomic():
            tally = _Tally()
            store = _AccountStore(now=now) if kind == "accounts" else None
            events = _EventStore(now=now) if kind == "events" else None
            errors: list[LineError] = []
            # After a bad row, later chunks still go through the domain so that their errors are
            # found too (up to MAX_ERRORS_REPORTED); the rollback discards whatever they wrote.
            for chunk in _chunks(reader, header, KINDS[kind], counter, bar):
                tally.rows += len(chunk.lines) + chunk.bad_rows
                errors.extend(chunk.errors)
                if chunk.lines:
                    if store is not None:
                        errors.extend(store.import_chunk(chunk, write=not errors))
                    elif events is not None:
                        errors.extend(events.stage_chunk(chunk, write=not errors))
                    else:
                        errors.extend(_ingest_chunk(kind, chunk, tally, now=now))
                if len(errors) >= MAX_ERRORS_REPORTED or chunk.unreadable:
                    raise ImportRefused(errors, stopped_early=True)
            if errors:
                raise ImportRefused(errors)
            if store is not None:
                tally.created, tally.updated = store.created, store.updated
            if events is not None:
                result = events.store()
                tally.created, tally.duplicates = result.accepted, result.duplicates
    return ImportSummary(
        kind=kind,
        rows=tally.rows,
        created=tally.created,
        updated=tally.updated,
        duplicates=tally.duplicates,
        seconds=time.monotonic() - started,
        ignored_columns=ignored,
    )


# --- reading ------------------------------------------------------------------------------


class _CountingReader(io.RawIOBase):
    """Counts the bytes read from a binary file, for a progress bar in bytes."""

    def __init__(self, raw: IO[bytes]):
        self._raw = raw
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._raw.read(len(buffer))
        buffer[: len(data)] = data
        self.bytes_read += len(data)
        return len(data)


@contextlib.contextmanager
def _open_text(path_or_file: Any) -> Iterator[tuple[IO[str], _CountingReader | None, int | None]]:
    """Yield the file as text (UTF-8, optional BOM), a byte counter and the size when known."""
    if isinstance(path_or_file, io.TextIOBase):
        yield path_or_file, None, None
        return
    with contextlib.ExitStack() as stack:
        if isinstance(path_or_file, (str, os.PathLike)):
            raw = stack.enter_context(open(path_or_file, "rb"))
        else:
            raw = path_or_file
        try:
            status = os.fstat(raw.fileno())
            total = status.st_size - raw.tell() if stat.S_ISREG(status.st_mode) else None
        except (AttributeError, OSError, io.UnsupportedOperation):
            total = None  # a pipe, or a file object without a descriptor: progress without an end
        counter = _CountingReader(raw)
        text = io.TextIOWrapper(io.BufferedReader(counter), encoding="utf-8-sig", newline="")
        try:
            yield text, counter, total
        finally:
            text.detach()  # leave a caller's file open


def _read_header(reader, kind: Kind) -> tuple[list[str], tuple[str, ...]]:
    """The header's column names and those ignored; ``ImportRefused`` for a header unfit to read."""
    try:
        header = [name.strip().lower() for name in next(reader)]
    except StopIteration:
        raise ImportRefused([LineError(1, None, "the file is empty; expected a header row")]) from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise ImportRefused([LineError(1, None, _unreadable(exc))]) from None
    errors = [
        LineError(1, name, "appears more than once in the header")
        for name in dict.fromkeys(header)
        if name and header.count(name) > 1
    ]
    errors += [
        LineError(1, name, "required column is missing from the header")
        for name in kind.required
        if name not in header
    ]
    if errors:
        raise ImportRefused(errors)
    ignored = tuple(name for name in header if name and name not in kind.columns)
    return header, ignored


@dataclass
class _Chunk:
    first_index: int  # the index of the chunk's first row among all rows handed to the domain
    lines: list[int] = field(default_factory=list)
    rows: list[dict[str, str]] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)
    bad_rows: int = 0  # rows refused while reading, not handed to the domain
    unreadable: bool = False  # reading stopped at a line that cannot be decoded or parsed


def _chunks(reader, header: list[str], kind: Kind, counter, bar) -> Iterator[_Chunk]:
    """Rows as ``{column: cell}`` with their lines; an empty cell means "missing".

    A row's line is where it starts, so a quoted cell spanning lines does not shift the count.
    Blank lines are skipped.
    """
    wanted = [(position, name) for position, name in enumerate(header) if name in kind.columns]
    # Rows for the ingestion functions need no filtering: their parsers read only their own
    # columns and take a blank cell as missing. Accounts (a serializer, partial updates) do.
    blank_is_missing = kind is not KINDS["accounts"]
    chunk = _Chunk(first_index=0)
    last_line = reader.line_num
    read = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except (csv.Error, UnicodeDecodeError) as exc:
            chunk.errors.append(LineError(last_line + 1, None, _unreadable(exc)))
            chunk.unreadable = True
            break
        line, last_line = last_line + 1, reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        read += 1
        if read % PROGRESS_EVERY_ROWS == 0:
            _advance(bar, counter, read)
        if len(cells) > len(header) and any(cell.strip() for cell in cells[len(header) :]):
            chunk.errors.append(
                LineError(line, None, f"has {len(cells)} cells but the header has {len(header)} columns")
            )
            chunk.bad_rows += 1
            continue
        chunk.lines.append(line)
        if blank_is_missing:
            # A short row leaves its last columns missing; extra blank cells were checked above.
            chunk.rows.append(dict(zip(header, cells, strict=False)))
        else:
            chunk.rows.append(
                {
                    name: cells[position]
                    for position, name in wanted
                    if position < len(cells) and cells[position].strip()
                }
            )
        if len(chunk.lines) >= CHUNK_ROWS:
            yield chunk
            chunk = _Chunk(first_index=chunk.first_index + len(chunk.lines))
    _advance(bar, counter, read)
    if chunk.lines or chunk.errors:
        yield chunk


def _bar_size() -> dict[str, Any]:
    """Follow the terminal's width, or assume one when it reports none (a pty without a size)."""
    try:
        size = os.get_terminal_size(sys.stderr.fileno())
    except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
        return {}
    if size.columns > 0 and size.lines > 0:
        return {"dynamic_ncols": True}
    return {"ncols": 100, "nrows": 24}


def _advance(bar, counter: _CountingReader | None, rows: int) -> None:
    bar.update((counter.bytes_read if counter else rows) - bar.n)
    if counter:
        bar.set_postfix_str(f"{rows:,} rows", refresh=False)


def _unreadable(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "is not valid UTF-8; save the file as UTF-8 (a BOM is fine)"
    return f"cannot be read as CSV: {exc}"


# --- events, tickets, surveys -------------------------------------------------------------


@dataclass
class _Tally:
    rows: int = 0
    created: int = 0
    updated: int = 0
    duplicates: int = 0


INGESTERS: dict[str, Callable[..., ingestion.BatchResult]] = {
    "events": ingestion.ingest_events,
    "tickets": ingestion.upsert_tickets,
    "surveys": ingestion.record_surveys,
}


def _ingest_chunk(kind: str, chunk: _Chunk, tally: _Tally, *, now: dt.datetime) -> list[LineError]:
    """Hand one chunk to the API's domain function (full scope: the system imports); its errors."""
    try:
        # A savepoint: a row the database refuses undoes this chunk only, not the transaction.
        with transaction.atomic():
            result = INGESTERS[kind](
                raw_rows=chunk.rows, accounts=Account.objects.all(), now=now, first_index=chunk.first_index
            )
    except BatchInvalid as exc:
        return [
            LineError(chunk.lines[error["index"] - chunk.first_index], error["field"], error["message"])
            for error in exc.errors
        ]
    except DataError:
        return _rows_the_database_refuses(kind, chunk, now=now)
    tally.created += result.accepted
    tally.updated += result.updated
    tally.duplicates += result.duplicates
    return []


class _EventStore:
    """Events of a file: each chunk validated and staged, stored every ``STORE_EVERY_ROWS`` rows.

    Storing many chunks at once means one rollup upsert per account, name and day of those rows
    rather than one per chunk; a key repeated across chunks is a duplicate all the same (of a
    staged row, or of one stored earlier in the file's transaction).
    """

    def __init__(self, *, now: dt.datetime):
        self.now = now
        self.batches = ingestion.EventBatches(accounts=Account.objects.all(), now=now)
        self.accepted = self.duplicates = 0

    def stage_chunk(self, chunk: _Chunk, *, write: bool) -> list[LineError]:
        """Validate a chunk; stage it while no row of the file has failed. Its errors, by line."""
        try:
            # A savepoint: a row the database refuses undoes this chunk only, not the transaction.
            with transaction.atomic():
                self.batches.add(chunk.rows, first_index=chunk.first_index, stage=write)
        except BatchInvalid as exc:
            return [
                LineError(chunk.lines[error["index"] - chunk.first_index], error["field"], error["message"])
                for error in exc.errors
            ]
        except DataError:
            return _rows_the_database_refuses("events", chunk, now=self.now)
        if self.batches.staged >= STORE_EVERY_ROWS:
            self.store()
        return []

    def store(self) -> ingestion.BatchResult:
        """Store what is staged; the file's totals so far."""
        result = self.batches.store()
        self.accepted += result.accepted
        self.duplicates += result.duplicates
        return ingestion.BatchResult(accepted=self.accepted, duplicates=self.duplicates)


def _rows_the_database_refuses(kind: str, chunk: _Chunk, *, now: dt.datetime) -> list[LineError]:
    """Rows that passed validation but not the database, found by trying each alone and undoing it.

    Only runs for a chunk that already failed, so its cost (a savepoint per row) is no concern.
    """
    errors = []
    for offset, (line, row) in enumerate(zip(chunk.lines, chunk.rows, strict=True)):
        try:
            with transaction.atomic():
                INGESTERS[kind](
                    raw_rows=[row],
                    accounts=Account.objects.all(),
                    now=now,
                    first_index=chunk.first_index + offset,
                )
                transaction.set_rollback(True)
        except DataError as exc:
            errors.append(LineError(line, None, f"the database refused this row: {str(exc).splitlines()[0]}"))
            if len(errors) >= MAX_ERRORS_REPORTED:
                break
    # Rows that fail only together (none alone) are named by the chunk's first line.
    return errors or [
        LineError(
            chunk.lines[0],
            None,
            f"the database refused the rows on lines {chunk.lines[0]} to {chunk.lines[-1]} together",
        )
    ]


# --- accounts -----------------------------------------------------------------------------


class _AccountStore:
    """Upserts accounts by ``external_id``, validated row by row by the API's serializer."""

    def __init__(self, *, now: dt.datetime):
        self.now = now
        self.created = 0
        self.updated = 0
        # New external ids not written (the file has failed by then): later rows for them are
        # checked as updates (only what they give) instead of as creations.
        self._not_written: set[str] = set()

    def import_chunk(self, chunk: _Chunk, *, write: bool) -> list[LineError]:
        """Validate each row; while no row of the file has failed, write it too."""
        existing = {
            account.external_id: account
            for account in Account.objects.filter(
                external_id__in={row.get("external_id", "").strip() for row in chunk.rows}
            )
        }
        users = _resolve_refs(
            {row["owner"].strip() for row in chunk.rows if "owner" in row},
            get_user_model().objects.all(),
            get_user_model().USERNAME_FIELD,
        )
        teams = _resolve_refs(
            {row["team"].strip() for row in chunk.rows if "team" in row}, Team.objects, "name"
        )
        errors: list[LineError] = []
        for line, row in zip(chunk.lines, chunk.rows, strict=True):
            data: dict[str, Any] = dict(row)
            row_errors = []
            for column, refs, what in (
                ("owner", users, "user with that username or id"),
                ("team", teams, "team with that name or id"),
            ):
                if column in data:
                    data[column] = refs.get(data[column].strip())
                    if data[column] is None:
                        row_errors.append(LineError(line, column, f"no {what}: {row[column].strip()!r}"))
            external_id = data.get("external_id", "").strip()
            account = existing.get(external_id)
            if account is not None:
                serializer = AccountSerializer(account, data=data, partial=True)
            else:
                serializer = AccountSerializer(data=data, partial=external_id in self._not_written)
            if not serializer.is_valid():
                row_errors += _serializer_errors(line, serializer.errors)
            if row_errors:
                errors += row_errors
                write = False
            if not write:
                if account is None and external_id:
                    self._not_written.add(external_id)
                continue
            values = dict(serializer.validated_data)
            if account is None:
                existing[external_id] = create_account(actor=None, values=values, now=self.now)
                self.created += 1
            else:
                update_account(actor=None, account=account, values=values, now=self.now)
                self.updated += 1
        return errors


def _resolve_refs(refs: set[str], queryset, name_field: str) -> dict[str, int]:
    """Map names, else integer ids, to primary keys (a name wins: names are what people write)."""
    by_name = dict(queryset.filter(**{f"{name_field}__in": refs}).values_list(name_field, "pk"))
    ids = {ref: int(ref) for ref in refs - by_name.keys() if re.fullmatch(r"[0-9]{1,18}", ref)}
    known_ids = set(queryset.filter(pk__in=ids.values()).values_list("pk", flat=True))
    return by_name | {ref: pk for ref, pk in ids.items() if pk in known_ids}


def _serializer_errors(line: int, errors: dict[str, Any]) -> list[LineError]:
    found = []
    for name, messages in errors.items():
        for message in messages if isinstance(messages, list) else [messages]:
            found.append(LineError(line, None if name == "non_field_errors" else name, str(message)))
    return found
