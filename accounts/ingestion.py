"""Ingestion of events, tickets, survey answers and touchpoints, from the API and CSV alike.

Every function validates the whole batch first (raising ``BatchInvalid`` with per-row errors
and storing nothing), then writes it in one transaction with set-based statements. Re-sending a
batch is safe: events and surveys dedupe on their keys, tickets upsert on ``external_id``.
"""

import datetime as dt
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
from accounts.models import Account, Contact, Event, SurveyResponse, Ticket, Touchpoint

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
    """Set each row's ``contact_id`` from its contact reference, creating unknown contacts.

    A reference with an ``@`` is an email, anything else an external id, both within the row's
    account. Unknown contacts are created (as integrators name people before we know them);
    concurrent batches naming the same new contact both end with the same row.
    """
    wanted = {(row["account_id"], row["contact"]) for row in parsed if row.get("contact")}
    for row in parsed:
        row["contact_id"] = None
    if not wanted:
        return

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
    for row in parsed:
        if row.get("contact"):
            row["contact_id"] = found[(row["account_id"], row["contact"])]


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


def _db_adapters(model, columns: Sequence[str]):
    """For each column, the model field's adapter to this database's parameter values."""
    fields = [model._meta.get_field(c.removesuffix("_id")) for c in columns]
    return [(column, field.get_db_prep_save) for column, field in zip(columns, fields, strict=True)]


# --- events -------------------------------------------------------------------------------


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
    now = now or timezone.now()
    parsed = _validated(raw_rows, EVENT_FIELDS, accounts, first_index, now, "occurred_at")
    unique_rows: list[dict[str, Any]] = []
    seen_keys: set[tuple[int, str]] = set()
    for row in parsed:
        if row["idempotency_key"] is not None:
            key = (row["account_id"], row["idempotency_key"])
            if key in seen_keys:
                continue
            seen_keys.add(key)
        unique_rows.append(row)

    with transaction.atomic():
        _resolve_contacts(unique_rows)
        inserted = _insert_events(unique_rows, received_at=now)
        _add_to_rollups(inserted)
    return BatchResult(accepted=len(inserted), duplicates=len(parsed) - len(inserted))


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


def _insert_events(rows: list[dict[str, Any]], *, received_at: dt.datetime) -> list[dict[str, Any]]:
    """Multi-row INSERT … ON CONFLICT DO NOTHING; return the rows that were really inserted."""
    quote = connection.ops.quote_name
    table = quote(Event._meta.db_table)
    column_list = ", ".join(quote(c) for c in EVENT_COLUMNS)
    one_row = "(" + ", ".join(["%s"] * len(EVENT_COLUMNS)) + ")"
    adapters = _db_adapters(Event, EVENT_COLUMNS)
    inserted_keys: set[tuple[int, str]] = set()
    with connection.cursor() as cursor:
        for start in range(0, len(rows), INSERT_CHUNK):
            chunk = rows[start : start + INSERT_CHUNK]
            params: list[Any] = []
            for row in chunk:
                row["received_at"] = received_at
                params.extend(adapt(row[column], connection) for column, adapt in adapters)
            cursor.execute(
                f"INSERT INTO {table} ({column_list}) VALUES {', '.join([one_row] * len(chunk))} "
                f"ON CONFLICT DO NOTHING RETURNING {quote('account_id')}, {quote('idempotency_key')}",
                params,
            )
            inserted_keys.update(
                (account_id, key) for account_id, key in cursor.fetchall() if key is not None
            )
    return [
        row
        for row in rows
        if row["idempotency_key"] is None or (row["account_id"], row["idempotency_key"]) in inserted_keys
    ]


def _add_to_rollups(events: Iterable[dict[str, Any]]) -> None:
    """Add events to the daily rollup with one upsert per chunk (sorted: no lock-order deadlocks)."""
    totals: dict[tuple[int, str, dt.date], list] = defaultdict(lambda: [0, Decimal(0)])
    for event in events:
        day = event["occurred_at"].astimezone(dt.UTC).date()
        total = totals[(event["account_id"], event["name"], day)]
        total[0] += 1
        total[1] += event["value"] or 0
    if not totals:
        return
    quote = connection.ops.quote_name
    table = quote("accounts_eventdaily")
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
