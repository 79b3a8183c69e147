"""The lean event ingestion path (accounts.ingestion): the same answers as the generic one.

1. A row the inline checks accept (``_plain_event``) parses to what ``rows.parse_rows`` gives for
   it, with no error; any other row goes through ``parse_rows`` itself (property test).
2. The PostgreSQL writer (COPY, INSERT … SELECT) and the portable one (SQLite's multi-row
   INSERTs) store the same events and rollups.
3. Of rows repeating a key, the first is stored; concurrent batches naming the same keys in
   opposite orders neither deadlock nor store anything twice.
4. Account references resolve by external id, by id or both, within the caller's scope only; a
   batch adds to a stored rollup row in place (a HOT update, with room left on its page).
"""

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.db import connection, connections, transaction
from hypothesis import given, settings
from hypothesis import strategies as st

from accounts import ingestion
from accounts import rows as r
from accounts.models import Account, Contact, Event, EventDaily
from accounts.visibility import visible_accounts
from tests.factories import AccountFactory

# Values close to the edges of each field's checks, valid and not.
TEXTS = st.sampled_from(["login", " login ", "", "   ", "x" * 100, "x" * 101, "a\x00b", "Ünï ✓"])
ACCOUNTS = st.one_of(TEXTS, st.sampled_from([0, 7, -1, 2**70, True, 1.5, None, [], {}]))
INSTANTS = st.one_of(
    st.sampled_from(
        [
            "2026-11-20T10:00:00Z",
            " 2026-11-20T10:00:00+02:00 ",
            "2026-11-20T10:00:00",
            "2026-11-20 10:00:00.123456-05:30",
            "20261120T100000Z",
            "2026-11-20T10:00:00.1234567Z",
            "2026-11-20T10:00Z",
            "2026-11-20",
            "2026-11-20T10:00:00+16:00",
            "2026-11-20T10:00:00-15:59",
            "1969-12-31T23:59:59Z",
            "2201-01-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "yesterday",
            "",
        ]
    ),
    st.sampled_from([None, 1735689600, True]),
    st.datetimes(
        min_value=dt.datetime(1960, 1, 1),
        max_value=dt.datetime(2300, 1, 1),
        timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=-9, minutes=-30))]),
    ).map(dt.datetime.isoformat),
)
VALUES = st.sampled_from([None, "", " ", "12.50", " 3 ", "1.234", "1e3", "NaN", "abc", 7, 2.5, True, [1]])
CONTACTS = st.sampled_from([None, "", "Ann@Acme.com", " crm-7 ", "not an@email", "a@", 5])
PROPERTIES = st.one_of(
    st.sampled_from([None, "", {}, [], "x", '{"a": 1}', {"a": "\x00"}, {"n": float("nan")}]),
    st.dictionaries(st.text(max_size=3), st.integers() | st.text(max_size=3), max_size=3),
)
KEYS = st.sampled_from([None, "", "   ", "k-1", " k-1 ", "k" * 255, "k" * 256, "a\x00", 5, ["k"]])


@st.composite
def raw_events(draw):
    row = {}
    for field, strategy in (
        ("account", ACCOUNTS),
        ("name", TEXTS),
        ("occurred_at", INSTANTS),
        ("value", VALUES),
        ("contact", CONTACTS),
        ("properties", PROPERTIES),
        ("idempotency_key", KEYS),
    ):
        if draw(st.booleans()) or field in ("account", "name", "occurred_at"):
            row[field] = draw(strategy)
    return row


@settings(max_examples=600, derandomize=True, deadline=None, database=None)
@given(raw=st.one_of(raw_events(), st.sampled_from([None, 5, "row", []])))
def test_a_row_accepted_inline_parses_as_the_generic_parser_parses_it(raw):
    plain = ingestion._plain_event(raw)
    parsed, errors = r.parse_rows([raw], ingestion.EVENT_FIELDS)

    if plain is not None:
        assert errors == []
        assert plain == ingestion._event_tuple(parsed[0])
    rows, both_errors = ingestion._parse_events([raw], 0)
    assert both_errors == errors
    assert rows == [ingestion._event_tuple(parsed[0])]


def test_the_usual_rows_take_the_inline_path():
    rows = [
        {"account": "acme", "name": "login", "occurred_at": "2026-11-20T10:00:00+00:00"},
        {"account": 7, "name": "export", "occurred_at": "2026-11-20T10:00:00Z", "value": "1.50"},
        {
            "account": "acme",
            "name": "login",
            "occurred_at": "2026-11-20T10:00:00.5-02:00",
            "value": None,
            "contact": "Ann@Acme.com",
            "properties": {"plan": "pro"},
            "idempotency_key": "k-1",
        },
    ]
    assert all(ingestion._plain_event(row) is not None for row in rows)
    assert ingestion._plain_event(rows[2]) == (
        "acme",
        "login",
        dt.datetime(2026, 11, 20, 12, 0, 0, 500_000, tzinfo=dt.UTC),
        None,
        "ann@acme.com",
        '{"plan": "pro"}',
        "k-1",
    )


# --- writers ---------------------------------------------------------------------------------


def _stored():
    events = sorted(
        Event.objects.values_list(
            "account_id", "contact__email", "name", "occurred_at", "value", "properties", "idempotency_key"
        ),
        key=repr,
    )
    rollup = sorted(EventDaily.objects.values_list("account_id", "name", "day", "count", "value_sum"))
    return events, rollup, Contact.objects.count()


def _ingest_twice(writer, monkeypatch, batch):
    monkeypatch.setattr(ingestion, "_PostgresEventWriter", writer)
    with transaction.atomic():
        first = ingestion.ingest_events(raw_rows=batch, accounts=Account.objects.all())
        again = ingestion.ingest_events(raw_rows=batch[:3], accounts=Account.objects.all())
        stored = _stored()
        transaction.set_rollback(True)
    return first, again, stored


def test_the_postgresql_and_portable_writers_store_the_same(db, monkeypatch):
    acme = AccountFactory(external_id="acme")
    AccountFactory(external_id="globex")
    EventDaily.objects.create(account=acme, name="login", day=dt.date(2026, 11, 20), count=5, value_sum=1)
    batch = [
        {
            "account": ["acme", "globex", acme.pk][i % 3],
            "name": ["login", "export"][i % 2],
            "occurred_at": f"2026-11-{19 + i % 3}T23:{i % 60:02d}:00-01:00",
            "value": None if i % 4 == 0 else f"{i}.25",
            "contact": [None, "ann@acme.com", "crm-9"][i % 3],
            "properties": {"i": i} if i % 5 == 0 else None,
            "idempotency_key": None if i % 7 == 0 else f"k-{i % 40}",
        }
        for i in range(60)
    ]

    copied = _ingest_twice(ingestion._PostgresEventWriter, monkeypatch, batch)
    portable = _ingest_twice(ingestion._PortableEventWriter, monkeypatch, batch)

    assert copied[0].accepted > 0 and copied[0].duplicates > 0
    assert copied == portable


def test_of_rows_repeating_a_key_the_first_is_stored(world, api, account_a):
    batch = [
        {"account": "acme", "name": "login", "occurred_at": "2026-11-20T10:00:00Z", "value": "1.00"},
        {
            "account": "acme",
            "name": "export",
            "occurred_at": "2026-11-20T10:00:00Z",
            "value": "2.00",
            "idempotency_key": "same",
        },
        {
            "account": "acme",
            "name": "login",
            "occurred_at": "2026-11-21T10:00:00Z",
            "value": "4.00",
            "idempotency_key": "same",
        },
    ]

    response = api(world.admin).post("/api/v1/events/", batch, format="json")

    assert response.json() == {"accepted": 2, "duplicates": 1}
    assert Event.objects.get(idempotency_key="same").name == "export"
    assert sorted(EventDaily.objects.values_list("name", "day", "count", "value_sum")) == [
        ("export", dt.date(2026, 11, 20), 1, Decimal("2.00")),
        ("login", dt.date(2026, 11, 20), 1, Decimal("1.00")),
    ]


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_with_the_same_keys_in_opposite_orders_store_each_once():
    # 10,000 rows each: long enough for the two INSERTs to overlap (unsorted, they deadlock).
    accounts = [AccountFactory(external_id=f"acc-{i}") for i in range(5)]
    batch = [
        {
            "account": accounts[i % 5].external_id,
            "name": "login",
            "occurred_at": f"2026-11-{1 + i % 20:02d}T10:00:00Z",
            "value": "1.00",
            "idempotency_key": f"k-{i}",
        }
        for i in range(10_000)
    ]
    results, failures = [], []
    start = threading.Barrier(2)

    def send(rows):
        try:
            start.wait()
            results.append(ingestion.ingest_events(raw_rows=rows, accounts=Account.objects.all()))
        except Exception as exc:  # reported by the assertion below
            failures.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=(rows,)) for rows in (batch, batch[::-1])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert sum(result.accepted for result in results) == 10_000
    assert sum(result.duplicates for result in results) == 10_000
    assert Event.objects.count() == 10_000
    assert sum(EventDaily.objects.values_list("count", flat=True)) == 10_000
    assert connection.vendor == "postgresql"


# --- account references and the rollup's pages ---------------------------------------------------


def test_account_references_resolve_by_external_id_by_id_or_both_within_the_scope(
    world, account_a, account_b
):
    scope = visible_accounts(world.csm_a)  # account_a only
    a, b = account_a.pk, account_b.pk

    def resolved(refs):
        ids = ingestion._account_ids(set(refs), scope)
        return {ref: ids.get(ref) for ref in refs}

    assert resolved(["acme", "globex", "nope"]) == {"acme": a, "globex": None, "nope": None}
    assert resolved([a, b, 2**70]) == {a: a, b: None, 2**70: None}
    assert resolved(["acme", b, a, "globex"]) == {"acme": a, b: None, a: a, "globex": None}


def _hot_updates() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relname = %s",
            [EventDaily._meta.db_table],
        )
        return cursor.fetchone()


def test_a_batch_adds_to_a_stored_rollup_row_in_place(db):
    # Rows written in one statement fill their pages up to the table's fillfactor: at 100 the
    # first page is full and an update must move its row (and add index entries); at 85 it
    # stays on its page, a heap-only (HOT) update.
    acme = AccountFactory(external_id="acme")
    first_day = dt.date(2025, 1, 1)
    EventDaily.objects.bulk_create(
        EventDaily(account=acme, name="login", day=first_day + dt.timedelta(days=i), count=1, value_sum=0)
        for i in range(400)
    )
    updates_before, hot_before = _hot_updates()

    result = ingestion.ingest_events(
        raw_rows=[
            {"account": "acme", "name": "login", "occurred_at": "2025-01-01T12:00:00Z", "value": "2.50"}
        ],
        accounts=Account.objects.all(),
    )

    updates_after, hot_after = _hot_updates()
    assert result.accepted == 1
    assert EventDaily.objects.get(account=acme, name="login", day=first_day).count == 2
    assert (updates_after - updates_before, hot_after - hot_before) == (1, 1)
