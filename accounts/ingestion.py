"""Ingestion of events, tickets, survey answers and touchpoints, from the API and CSV alike.

Every function validates the whole batch first (raising ``BatchInvalid`` with per-row errors
and storing nothing), then writes it in one transaction with set-based statements. Re-sending a
batch is safe: events and surveys dedupe on their keys, tickets upsert on ``external_id``.
"""

import datetime as dt
import itertools
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.db.models.functions import Lower
from django.utils import timezone

from accounts import rows as r
from accounts.lookups import any_of
from accounts.models import Account, Contact, Event, EventDaily, SurveyResponse, Ticket, Touchpoint

MAX_EVENTS_PER_BATCH = 10_000
# Rows per INSERT statement: well under PostgreSQL's 65,535 and SQLite's 32,766 parameters.
INSERT_CHUNK = 1_000
# Events further in the future than this are refused: they would break "days since".
FUTURE_TOLERANCE = dt.timedelta(days=1)

EVENT_FIELDS = (
    r.Field("account", r.account_ref, required=True),
    r.Field("name", r.text(100), required=True),
    r.Field("occurred_at", r.aware_datetime, required=True),
    r.Field("value", r.decimal(14, 2)),
    r.Field("contact", r.contact_ref),
    r.Field("properties", r.json_object, default={}),
    r.Field("idempotency_key", r.text(255)),
)
TICKET_FIELDS = (
    r.Field("account", r.account_ref, required=True),
    r.Field("external_id", r.text(255), required=True),
    r.Field("subject", r.text(500), default=""),
    r.Field("priority", r.choice(Ticket.Priority.values), default=Ticket.Priority.NORMAL),
    r.Field("status", r.choice(Ticket.Status.values), default=Ticket.Status.OPEN),
    r.Field("opened_at", r.aware_datetime, required=True),
    r.Field("closed_at", r.aware_datetime),
)
SURVEY_FIELDS = (
    r.Field("account", r.account_ref, required=True),
    r.Field("contact", r.contact_ref),
    r.Field("kind", r.choice(SurveyResponse.Kind.values), required=True),
    r.Field("score", r.integer(0, 10), required=True),
    r.Field("comment", r.long_text, default=""),
    r.Field("responded_at", r.aware_datetime, required=True),
    r.Field("external_id", r.text(255)),
)
TOUCHPOINT_FIELDS = (
    r.Field("account", r.account_ref, required=True),
    r.Field("kind", r.choice(Touchpoint.Kind.values), required=True),
    r.Field("occurred_at", r.aware_datetime, required=True),
    r.Field("summary", r.long_text, default=""),
)


@dataclass(frozen=True)
class BatchResult:
    accepted: int
    duplicates: int = 0
    updated: int = 0


# --- shared steps -------------------------------------------------------------------------


def _resolve_accounts(
    parsed: Sequence[dict[str, Any]],
    errors: list[dict[str, Any]],
    accounts: QuerySet[Account],
    first_index: int,
) -> None:
    """Replace each row's ``account`` reference by an account id, or report it unknown.

    Only accounts in ``accounts`` (the caller's scope) are found, so an account outside the
    caller's scope is as unknown as one that does not exist.
    """
    external_ids = {row["account"] for row in parsed if isinstance(row.get("account"), str)}
    pks = {row["account"] for row in parsed if isinstance(row.get("account"), int)}
    by_external_id = dict(accounts.filter(external_id__in=external_ids).values_list("external_id", "id"))
    known_pks = set(accounts.filter(pk__in=pks).values_list("id", flat=True))
    for index, row in enumerate(parsed, start=first_index):
        ref = row.get("account")
        if ref is None:
            continue
        account_id = by_external_id.get(ref) if isinstance(ref, str) else (ref if ref in known_pks else None)
        if account_id is None:
            errors.append(r.row_error(index, "account", f"unknown account {ref!r}"))
        row["account_id"] = account_id


def _check_not_future(parsed, errors, field: str, now: dt.datetime, first_index: int) -> None:
    limit = now + FUTURE_TOLERANCE
    for index, row in enumerate(parsed, start=first_index):
        when = row.get(field)
        if when is not None and when > limit:
            errors.append(r.row_error(index, field, "is more than a day in the future"))


def _resolve_contacts(parsed: Sequence[dict[str, Any]]) -> None:
    """Set each row's ``contact_id`` from its contact reference (see ``_contact_ids``)."""
    wanted = {(row["account_id"], row["contact"]) for row in parsed if row.get("contact")}
    found = _contact_ids(wanted) if wanted else {}
    for row in parsed:
        row["contact_id"] = found[(row["account_id"], row["contact"])] if row.get("contact") else None


def _contact_ids(wanted: set[tuple[int, str]]) -> dict[tuple[int, str], int]:
    """Map ``(account_id, reference)`` pairs to contact ids, creating the unknown contacts.

    A reference with an ``@`` is an email, anything else an external id, both within the row's
    account. Unknown contacts are created (as integrators name people before we know them);
    concurrent batches naming the same new contact both end with the same row.
    """

    def lookup() -> dict[tuple[int, str], int]:
        account_ids = {account_id for account_id, _ in wanted}
        refs = {ref for _, ref in wanted}
        found: dict[tuple[int, str], int] = {}
        # Emails compare case-insensitively (references arrive lower-cased).
        contacts = (
            Contact.objects.filter(account_id__in=account_ids)
            .annotate(email_lower=Lower("email"))
            .filter(Q(email_lower__in=refs) | Q(external_id__in=refs))
        )
        for contact_id, account_id, email, external_id in contacts.values_list(
            "id", "account_id", "email_lower", "external_id"
        ):
            for ref in (email, external_id):
                if (account_id, ref) in wanted:
                    found[(account_id, ref)] = contact_id
        return found

    found = lookup()
    missing = wanted - found.keys()
    if missing:
        Contact.objects.bulk_create(
            [
                Contact(account_id=account_id, email=ref)
                if "@" in ref
                else Contact(account_id=account_id, external_id=ref)
                for account_id, ref in sorted(missing)
            ],
            ignore_conflicts=True,
        )
        found = lookup()
    return found


def _validated(raw_rows, fields, accounts, first_index: int, now: dt.datetime, when_field: str, check=None):
    """Parse rows, resolve accounts, refuse future times and run ``check(row)`` on rows that
    are valid so far (it returns ``[(field, message)]``); raise ``BatchInvalid`` listing every
    error."""
    if not isinstance(raw_rows, list):
        raise r.BatchInvalid([r.row_error(first_index, None, "expected a list of objects")])
    parsed, errors = r.parse_rows(raw_rows, fields, first_index=first_index)
    _resolve_accounts(parsed, errors, accounts, first_index)
    _check_not_future(parsed, errors, when_field, now, first_index)
    if check is not None:
        # A row with an error may miss required values (None): cross-field checks skip it.
        bad = {error["index"] for error in errors}
        for index, row in enumerate(parsed, start=first_index):
            if index not in bad:
                errors.extend(r.row_error(index, field, message) for field, message in check(row))
    if errors:
        raise r.BatchInvalid(sorted(errors, key=lambda e: e["index"]))
    return parsed


# --- events -------------------------------------------------------------------------------
#
# The hot path of ingestion (10,000-row API batches, CSV files of millions of rows). Rows are
# validated in one tight loop (``_parse_events``) into tuples; on PostgreSQL they are COPYed into a
# temporary table and moved into the events table and the daily rollup by one statement
# (``_PostgresEventWriter``); other databases (SQLite, ``make run``) use multi-row INSERTs.

# A validated event, in the order of EVENT_FIELDS; ``properties`` is the JSON text to store.
_ACCOUNT, _NAME, _OCCURRED_AT, _VALUE, _CONTACT, _PROPERTIES, _KEY = range(7)
_PARSE_ACCOUNT = EVENT_FIELDS[0].parse
_PARSE_VALUE = EVENT_FIELDS[3].parse
_PARSE_CONTACT = EVENT_FIELDS[4].parse
# Account ids are bigints: an integer reference outside this range names no account.
_BIGINT = range(-(2**63), 2**63)


def ingest_events(
    *,
    raw_rows: list[Any],
    accounts: QuerySet[Account],
    now: dt.datetime | None = None,
    first_index: int = 0,
) -> BatchResult:
    """Validate and store a batch of events and their daily rollups, all or nothing.

    A row whose ``(account, idempotency_key)`` is already stored, or appears earlier in the
    same batch, is a duplicate: counted, not stored. Safe to run twice, and concurrently.
    """
    with transaction.atomic():
        batches = EventBatches(accounts=accounts, now=now)
        batches.add(raw_rows, first_index=first_index)
        return batches.store()


class EventBatches:
    """Events validated and staged batch by batch, then stored together by ``store()``.

    The API stores one batch; a CSV file stages each chunk and stores the whole file at once, so
    its rollup is one upsert per account, name and day of the file rather than one per chunk.
    Use inside a transaction: staged rows live in a temporary table until ``store()``.
    """

    def __init__(self, *, accounts: QuerySet[Account], now: dt.datetime | None = None) -> None:
        self.accounts = accounts
        self.now = now or timezone.now()
        self.staged = 0
        # Account references already resolved for this batch's scope: a file's chunks name the
        # same accounts again and again.
        self._account_ids: dict[str | int, int] = {}
        self._writer = _PostgresEventWriter() if connection.vendor == "postgresql" else _PortableEventWriter()

    def add(self, raw_rows: Any, *, first_index: int = 0, stage: bool = True) -> None:
        """Validate rows (``BatchInvalid`` listing every error, nothing staged) and stage them.

        ``stage=False`` only validates: a CSV file already refused still reports later errors.
        """
        rows = _validated_events(raw_rows, self.accounts, first_index, self.now, self._account_ids)
        if stage:
            self._writer.stage(_with_contact_ids(rows))
            self.staged += len(rows)

    def store(self) -> BatchResult:
        """Store every row staged since the last store that is not a duplicate (of a stored row
        or of an earlier staged one), and add them to the daily rollup."""
        accepted = self._writer.store(received_at=self.now)
        result = BatchResult(accepted=accepted, duplicates=self.staged - accepted)
        self.staged = 0
        return result


def _validated_events(
    raw_rows: Any,
    accounts: QuerySet[Account],
    first_index: int,
    now: dt.datetime,
    account_ids: dict[str | int, int],
) -> list:
    """Parsed rows with their account ids, or ``BatchInvalid`` with every error, as ``_validated``.

    ``account_ids`` holds the references resolved so far; the new ones are looked up and added.
    """
    if not isinstance(raw_rows, list):
        raise r.BatchInvalid([r.row_error(first_index, None, "expected a list of objects")])
    rows, errors = _parse_events(raw_rows, first_index)
    refs = {row[_ACCOUNT] for row in rows if row[_ACCOUNT] is not None}
    account_ids.update(_account_ids(refs - account_ids.keys(), accounts))
    limit = now + FUTURE_TOLERANCE
    resolved = []
    for index, row in enumerate(rows, start=first_index):
        ref = row[_ACCOUNT]
        account_id = account_ids.get(ref)
        if account_id is None and ref is not None:
            errors.append(r.row_error(index, "account", f"unknown account {ref!r}"))
        when = row[_OCCURRED_AT]
        if when is not None and when > limit:
            errors.append(r.row_error(index, "occurred_at", "is more than a day in the future"))
        resolved.append((account_id, *row[1:]))
    if errors:
        raise r.BatchInvalid(sorted(errors, key=lambda e: e["index"]))
    return resolved


def _parse_events(raw_rows: list[Any], first_index: int) -> tuple[list[tuple], list[dict[str, Any]]]:
    """Every row as a tuple of EVENT_FIELDS (``None`` where a field failed), and the errors.

    Plain rows (the usual shapes) take ``_plain_event``; any other row goes through the generic
    ``rows.parse_rows``, which owns the error messages, so both give the same answer.
    """
    rows: list[tuple] = []
    errors: list[dict[str, Any]] = []
    plain = _plain_event
    for index, raw in enumerate(raw_rows, start=first_index):
        row = plain(raw)
        if row is None:
            parsed, row_errors = r.parse_rows([raw], EVENT_FIELDS, first_index=index)
            errors.extend(row_errors)
            row = _event_tuple(parsed[0])
        rows.append(row)
    return rows, errors


def _event_tuple(parsed: dict[str, Any]) -> tuple:
    properties = parsed.get("properties")
    text = None if properties is None else json.dumps(properties, allow_nan=False)
    return (
        parsed.get("account"),
        parsed.get("name"),
        parsed.get("occurred_at"),
        parsed.get("value"),
        parsed.get("contact"),
        text,
        parsed.get("idempotency_key"),
    )


def _plain_event(raw: Any) -> tuple | None:
    """A row in the usual shapes, checked inline; ``None`` for anything else or anything wrong.

    Each check is the one of the field's parser in ``EVENT_FIELDS`` (rows.py) for that shape, so a
    row accepted here parses to the same values there; any doubt returns ``None``.
    """
    if type(raw) is not dict:
        return None
    get = raw.get
    account = get("account")
    if type(account) is str:
        account = account.strip()
        if not account or len(account) > 255 or "\x00" in account:
            return None
    elif type(account) is not int:
        return None
    name = get("name")
    if type(name) is not str:
        return None
    name = name.strip()
    if not name or len(name) > 100 or "\x00" in name:
        return None
    occurred_at = _plain_instant(get("occurred_at"))
    if occurred_at is None:
        return None
    try:
        value = get("value")
        value = None if r.is_blank(value) else _PARSE_VALUE(value)
        contact = get("contact")
        contact = None if r.is_blank(contact) else _PARSE_CONTACT(contact)
        properties = get("properties")
        properties = "{}" if r.is_blank(properties) or properties == {} else r.json_object_text(properties)
    except ValueError:
        return None
    key = get("idempotency_key")
    if key is not None:
        if type(key) is not str:
            return None
        key = key.strip()
        if len(key) > 255 or "\x00" in key:
            return None
        key = key or None
    return (account, name, occurred_at, value, contact, properties, key)


def _plain_instant(value: Any) -> dt.datetime | None:
    """``rows.aware_datetime`` for an ISO-8601 string that ``fromisoformat`` reads; else ``None``."""
    if type(value) is not str:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    offset = parsed.utcoffset()
    if offset is None or abs(offset) > r.MAX_UTC_OFFSET or not 1970 <= parsed.year <= 2200:
        return None
    return parsed.astimezone(dt.UTC)


def _account_ids(refs: set[str | int], accounts: QuerySet[Account]) -> dict[str | int, int]:
    """Map account references (external ids, ids) to ids, among ``accounts`` only: one query.

    On PostgreSQL the references travel as two array parameters, whatever their number (an
    ``IN`` list of 10,000 parameters costs more to build than the query takes to run).
    """
    external_ids = [ref for ref in refs if type(ref) is str]
    pks = [ref for ref in refs if type(ref) is int and ref in _BIGINT]
    if not external_ids and not pks:
        return {}
    # Only the kinds of reference the batch holds: a lone condition can use its unique index
    # (an OR with an empty array cannot), and no ORDER BY (the scope's ordering, unused here).
    by_external_id, by_pk = any_of("external_id", external_ids), any_of("id", pks)
    if not pks:
        matches = by_external_id
    elif not external_ids:
        matches = by_pk
    else:
        matches = by_external_id | by_pk
    found = accounts.filter(matches).order_by().values_list("external_id", "id")
    wanted_pks = set(pks)
    ids: dict[str | int, int] = {}
    for external_id, pk in found:
        ids[external_id] = pk
        if pk in wanted_pks:
            ids[pk] = pk
    return ids


def _with_contact_ids(rows: list[tuple]) -> list[tuple]:
    """Rows with their contact reference replaced by the contact's id (created when unknown)."""
    wanted = {(row[_ACCOUNT], row[_CONTACT]) for row in rows if row[_CONTACT] is not None}
    if not wanted:
        return rows
    found = _contact_ids(wanted)
    return [
        row
        if row[_CONTACT] is None
        else (*row[:_CONTACT], found[(row[_ACCOUNT], row[_CONTACT])], *row[_CONTACT + 1 :])
        for row in rows
    ]


class _PostgresEventWriter:
    """COPY into a temporary table, then one statement inserts and rolls up what is new.

    The INSERT … SELECT … ON CONFLICT DO NOTHING skips stored keys and keys repeated in the
    staged rows; its RETURNING feeds the rollup upsert, so only really inserted events count.
    Both sort their rows (events by account and key, rollup rows by account, name and day), so
    concurrent batches take their locks in the same order and cannot deadlock each other.
    """

    _numbers = itertools.count()

    def __init__(self) -> None:
        if not connection.in_atomic_block:
            raise RuntimeError(
                "events are staged inside a transaction (the staging table is dropped at commit)"
            )
        # A name of its own: a CSV import may check single rows while its file is staged.
        self.table = f"ingest_events_{next(self._numbers)}"
        # Created here, not in stage(): a CSV chunk stages inside a savepoint that may roll back.
        # The target's column types, so that a value the table would refuse fails in stage(),
        # with its batch, rather than in store().
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TEMPORARY TABLE {self.table} (account_id bigint, contact_id bigint,"
                " name varchar(100), occurred_at timestamptz, value numeric(14, 2),"
                " properties jsonb, idempotency_key varchar(255),"
                # Numbered in the order staged: of rows repeating a key, the first is stored.
                " position bigint GENERATED ALWAYS AS IDENTITY) ON COMMIT DROP"
            )

    def stage(self, rows: list[tuple]) -> None:
        if not rows:
            return
        columns = "account_id, name, occurred_at, value, contact_id, properties, idempotency_key"
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(f"COPY {self.table} ({columns}) FROM STDIN") as copy,
        ):
            write = copy.write_row
            for row in rows:
                write(row)

    def store(self, *, received_at: dt.datetime) -> int:
        events = Event._meta.db_table
        rollup = EventDaily._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                WITH inserted AS (
                    INSERT INTO {events} ({", ".join(EVENT_COLUMNS)})
                    SELECT account_id, contact_id, name, occurred_at, value, properties,
                           idempotency_key, %s
                    FROM {self.table}
                    ORDER BY account_id, idempotency_key, position
                    ON CONFLICT DO NOTHING
                    RETURNING account_id, name, occurred_at, value
                ), rolled_up AS (
                    INSERT INTO {rollup} AS daily (account_id, name, day, count, value_sum)
                    SELECT account_id, name, (occurred_at AT TIME ZONE 'UTC')::date,
                           count(*), coalesce(sum(value), 0)
                    FROM inserted
                    GROUP BY 1, 2, 3
                    ORDER BY 1, 2, 3
                    ON CONFLICT (account_id, name, day) DO UPDATE
                    SET count = daily.count + excluded.count,
                        value_sum = daily.value_sum + excluded.value_sum
                )
                SELECT count(*) FROM inserted
                """,
                [received_at],
            )
            accepted = cursor.fetchone()[0]
            # Emptied, not dropped: a CSV file may stage more (the table goes at commit).
            cursor.execute(f"TRUNCATE {self.table}")
        return accepted


class _PortableEventWriter:
    """Other databases (SQLite for ``make run``): multi-row INSERTs and a rollup upsert."""

    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def stage(self, rows: list[tuple]) -> None:
        self.rows.extend(rows)

    def store(self, *, received_at: dt.datetime) -> int:
        unique_rows: list[tuple] = []
        seen_keys: set[tuple[int, str]] = set()
        for row in self.rows:
            if row[_KEY] is not None:
                key = (row[_ACCOUNT], row[_KEY])
                if key in seen_keys:
                    continue
                seen_keys.add(key)
            unique_rows.append(row)
        self.rows = []
        inserted = _insert_events(unique_rows, received_at=received_at)
        _add_to_rollups(inserted)
        return len(inserted)


EVENT_COLUMNS = (
    "account_id",
    "contact_id",
    "name",
    "occurred_at",
    "value",
    "properties",
    "idempotency_key",
    "received_at",
)


def _insert_events(rows: list[tuple], *, received_at: dt.datetime) -> list[tuple]:
    """Multi-row INSERT … ON CONFLICT DO NOTHING; return the rows that were really inserted."""
    quote = connection.ops.quote_name
    table = quote(Event._meta.db_table)
    column_list = ", ".join(quote(c) for c in EVENT_COLUMNS)
    one_row = "(" + ", ".join(["%s"] * len(EVENT_COLUMNS)) + ")"
    ops = connection.ops
    inserted_keys: set[tuple[int, str]] = set()
    with connection.cursor() as cursor:
        for start in range(0, len(rows), INSERT_CHUNK):
            chunk = rows[start : start + INSERT_CHUNK]
            params: list[Any] = []
            for account_id, name, occurred_at, value, contact_id, properties, key in chunk:
                params += [
                    account_id,
                    contact_id,
                    name,
                    ops.adapt_datetimefield_value(occurred_at),
                    ops.adapt_decimalfield_value(value, 14, 2),
                    properties,  # already JSON text
                    key,
                    ops.adapt_datetimefield_value(received_at),
                ]
            cursor.execute(
                f"INSERT INTO {table} ({column_list}) VALUES {', '.join([one_row] * len(chunk))} "
                f"ON CONFLICT DO NOTHING RETURNING {quote('account_id')}, {quote('idempotency_key')}",
                params,
            )
            inserted_keys.update(
                (account_id, key) for account_id, key in cursor.fetchall() if key is not None
            )
    return [row for row in rows if row[_KEY] is None or (row[_ACCOUNT], row[_KEY]) in inserted_keys]


def _add_to_rollups(events: Iterable[tuple]) -> None:
    """Add events to the daily rollup with one upsert per chunk (sorted: no lock-order deadlocks)."""
    totals: dict[tuple[int, str, dt.date], list] = defaultdict(lambda: [0, Decimal(0)])
    for event in events:
        day = event[_OCCURRED_AT].astimezone(dt.UTC).date()
        total = totals[(event[_ACCOUNT], event[_NAME], day)]
        total[0] += 1
        total[1] += event[_VALUE] or 0
    if not totals:
        return
    quote = connection.ops.quote_name
    table = quote(EventDaily._meta.db_table)
    items = sorted(totals.items())
    with connection.cursor() as cursor:
        for start in range(0, len(items), INSERT_CHUNK):
            chunk = items[start : start + INSERT_CHUNK]
            params: list[Any] = []
            for (account_id, name, day), (count, value_sum) in chunk:
                params.extend(
                    [
                        account_id,
                        name,
                        connection.ops.adapt_datefield_value(day),
                        count,
                        connection.ops.adapt_decimalfield_value(value_sum, 18, 2),
                    ]
                )
            cursor.execute(
                f"INSERT INTO {table} (account_id, name, day, count, value_sum) VALUES "
                + ", ".join(["(%s, %s, %s, %s, %s)"] * len(chunk))
                + f" ON CONFLICT (account_id, name, day) DO UPDATE SET"
                f" count = {table}.count + excluded.count,"
                f" value_sum = {table}.value_sum + excluded.value_sum",
                params,
            )


# --- tickets, surveys, touchpoints --------------------------------------------------------


def _check_ticket(row: dict[str, Any]) -> list[tuple[str, str]]:
    if row["closed_at"] is not None and row["closed_at"] < row["opened_at"]:
        return [("closed_at", "must not be before opened_at")]
    return []


def _check_survey(row: dict[str, Any]) -> list[tuple[str, str]]:
    low, high = SurveyResponse.SCORE_RANGES[row["kind"]]
    if not low <= row["score"] <= high:
        return [("score", f"a {row['kind'].upper()} score must be between {low} and {high}")]
    return []


def upsert_tickets(
    *, raw_rows: list[Any], accounts: QuerySet[Account], now: dt.datetime | None = None, first_index: int = 0
) -> BatchResult:
    """Create or update tickets by ``external_id`` (the last row wins within a batch)."""
    now = now or timezone.now()
    parsed = _validated(raw_rows, TICKET_FIELDS, accounts, first_index, now, "opened_at", _check_ticket)
    errors = []
    latest: dict[str, dict[str, Any]] = {}
    for index, row in enumerate(parsed, start=first_index):
        latest[row["external_id"]] = row | {"index": index}
    # A ticket id that already belongs to an account outside this batch's reach is refused.
    existing = dict(
        Ticket.objects.filter(external_id__in=latest.keys()).values_list("external_id", "account_id")
    )
    visible_ids = set(accounts.filter(pk__in=set(existing.values())).values_list("id", flat=True))
    for external_id, account_id in existing.items():
        if account_id not in visible_ids:
            errors.append(
                r.row_error(latest[external_id]["index"], "external_id", "conflicts with an existing ticket")
            )
    if errors:
        raise r.BatchInvalid(sorted(errors, key=lambda e: e["index"]))
    with transaction.atomic():
        Ticket.objects.bulk_create(
            [
                Ticket(
                    account_id=row["account_id"],
                    external_id=row["external_id"],
                    subject=row["subject"],
                    priority=row["priority"],
                    status=row["status"],
                    opened_at=row["opened_at"],
                    closed_at=row["closed_at"],
                )
                for row in sorted(latest.values(), key=lambda row: row["external_id"])
            ],
            batch_size=INSERT_CHUNK,
            update_conflicts=True,
            unique_fields=["external_id"],
            update_fields=[
                "account",
                "subject",
                "priority",
                "status",
                "opened_at",
                "closed_at",
                "updated_at",
            ],
        )
    return BatchResult(accepted=len(latest) - len(existing), updated=len(existing))


def record_surveys(
    *, raw_rows: list[Any], accounts: QuerySet[Account], now: dt.datetime | None = None, first_index: int = 0
) -> BatchResult:
    """Store survey answers; one whose ``external_id`` was seen before is a duplicate."""
    now = now or timezone.now()
    parsed = _validated(raw_rows, SURVEY_FIELDS, accounts, first_index, now, "responded_at", _check_survey)
    keys = [row["external_id"] for row in parsed if row["external_id"]]
    with transaction.atomic():
        seen = set(SurveyResponse.objects.filter(external_id__in=keys).values_list("external_id", flat=True))
        fresh, duplicates = [], 0
        for row in parsed:
            if row["external_id"]:
                if row["external_id"] in seen:
                    duplicates += 1
                    continue
                seen.add(row["external_id"])
            fresh.append(row)
        _resolve_contacts(fresh)
        created = SurveyResponse.objects.bulk_create(
            [
                SurveyResponse(
                    account_id=row["account_id"],
                    contact_id=row["contact_id"],
                    kind=row["kind"],
                    score=row["score"],
                    comment=row["comment"],
                    responded_at=row["responded_at"],
                    external_id=row["external_id"],
                )
                for row in fresh
            ],
            batch_size=INSERT_CHUNK,
            ignore_conflicts=True,
        )
    return BatchResult(accepted=len(created), duplicates=duplicates)


def record_touchpoints(
    *, raw_rows: list[Any], accounts: QuerySet[Account], author, now: dt.datetime | None = None
) -> list[Touchpoint]:
    """Log CSM activity on accounts, authored by ``author``."""
    now = now or timezone.now()
    parsed = _validated(raw_rows, TOUCHPOINT_FIELDS, accounts, 0, now, "occurred_at")
    with transaction.atomic():
        return Touchpoint.objects.bulk_create(
            [
                Touchpoint(
                    account_id=row["account_id"],
                    author=author if getattr(author, "is_authenticated", False) else None,
                    kind=row["kind"],
                    occurred_at=row["occurred_at"],
                    summary=row["summary"],
                )
                for row in parsed
            ]
        )
