"""The incremental recompute rescores exactly the accounts whose inputs changed since the last run."""

import datetime as dt

import pytest
import time_machine

from accounts.ingestion import ingest_events, upsert_tickets
from accounts.models import Account
from health import scoring
from health.models import HealthScore
from health.overrides import set_override
from health.scoring import changed_account_ids, recompute_changed, recompute_health
from playbooks.pipeline import changed_scope, run_pipeline
from tests.factories import AccountFactory
from tests.health.conftest import T, linear_logins, measure, scorecard  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db
MINUTE = dt.timedelta(minutes=1)


def login(account: Account, *, when: dt.datetime, received: dt.datetime) -> None:
    row = {"account": account.external_id, "name": "login", "occurred_at": when.isoformat()}
    ingest_events(raw_rows=[row], accounts=Account.objects.all(), now=received)


@pytest.fixture
def book(linear_logins, monkeypatch):  # noqa: F811 - the fixture
    """Four accounts made an hour before T, with a login each, scored at T.

    So few accounts that any change is a large share: the share above which a run rescores
    every account is lifted here (``test_most_accounts_changed_is_a_full_run`` tests it).
    """
    monkeypatch.setattr(scoring, "FULL_ABOVE_SHARE", 1.0)
    with time_machine.travel(T - 60 * MINUTE, tick=False):
        accounts = [AccountFactory(external_id=f"inc-{i}") for i in range(4)]
        for account in accounts:
            login(account, when=T - 90 * MINUTE, received=T - 60 * MINUTE)
    recompute_health(now=T)
    return accounts


def test_only_accounts_with_new_inputs_are_picked(book):
    quiet, new_event, new_ticket, overridden = book
    later = T + 15 * MINUTE
    with time_machine.travel(T + 10 * MINUTE, tick=False):
        login(new_event, when=T + 5 * MINUTE, received=T + 10 * MINUTE)
        upsert_tickets(
            raw_rows=[
                {
                    "account": new_ticket.external_id,
                    "external_id": "t-1",
                    "subject": "Broken",
                    "priority": "urgent",
                    "status": "open",
                    "opened_at": (T + MINUTE).isoformat(),
                }
            ],
            accounts=Account.objects.all(),
            now=T + 10 * MINUTE,
        )
        set_override(
            actor=None,
            account=overridden,
            band="red",
            reason="Escalation",
            expires_at=T + dt.timedelta(days=3),
            now=T + 10 * MINUTE,
        )
    assert changed_account_ids(since=T, now=later) == {new_event.pk, new_ticket.pk, overridden.pk}
    # Nothing recorded after a time that is still ahead counts yet.
    assert changed_account_ids(since=T, now=T + 2 * MINUTE) == set()

    changes = recompute_changed(now=later)
    assert changes.full is False
    assert changes.accounts == 3
    rescored = set(HealthScore.objects.filter(computed_at=later).values_list("account_id", flat=True))
    assert rescored == {new_event.pk, new_ticket.pk, overridden.pk}
    new_event.refresh_from_db()
    assert new_event.health_score == HealthScore.objects.get(account=new_event, computed_at=later).score
    overridden.refresh_from_db()
    assert overridden.health_band == "red"
    # The quiet account keeps its score from the full run.
    assert list(HealthScore.objects.filter(account=quiet).values_list("computed_at", flat=True)) == [T]


def test_an_expiring_override_is_a_change_though_nothing_was_recorded(book):
    account = book[0]
    with time_machine.travel(T + MINUTE, tick=False):
        set_override(
            actor=None, account=account, band="red", reason="Watch", expires_at=T + 2 * MINUTE, now=T + MINUTE
        )
    recompute_health(now=T + 10 * MINUTE)  # a full run after it was set and expired
    assert changed_account_ids(since=T + 10 * MINUTE, now=T + 20 * MINUTE) == set()
    with time_machine.travel(T + 30 * MINUTE, tick=False):
        set_override(
            actor=None,
            account=account,
            band="red",
            reason="Again",
            expires_at=T + 60 * MINUTE,
            now=T + 30 * MINUTE,
        )
    recompute_health(now=T + 40 * MINUTE)  # sees the override
    assert changed_account_ids(since=T + 40 * MINUTE, now=T + 50 * MINUTE) == set()
    assert changed_account_ids(since=T + 40 * MINUTE, now=T + 70 * MINUTE) == {account.pk}  # it expired


def test_without_a_previous_run_or_after_a_new_scorecard_every_account_is_rescored(linear_logins):  # noqa: F811
    with time_machine.travel(T - 60 * MINUTE, tick=False):
        accounts = [AccountFactory(external_id=f"first-{i}") for i in range(3)]
    assert recompute_changed(now=T).full is True
    assert HealthScore.objects.filter(computed_at=T).count() == len(accounts)

    with time_machine.travel(T + 5 * MINUTE, tick=False):
        scorecard(
            [
                measure(
                    "logins",
                    "event_count",
                    {"type": "linear", "zero_at": 0, "full_at": 5},
                    event="login",
                    days=7,
                )
            ],
            now=T + 5 * MINUTE,
        )
    changes = recompute_changed(now=T + 15 * MINUTE)
    assert changes.full is True and changes.accounts == len(accounts)


def test_the_incremental_pipeline_rescores_the_changed_accounts_only(book):
    with time_machine.travel(T - 30 * MINUTE, tick=False):
        run_pipeline(now=T - 30 * MINUTE)  # the journeys step places every account
    with time_machine.travel(T + 10 * MINUTE, tick=False):
        login(book[2], when=T + 5 * MINUTE, received=T + 10 * MINUTE)
    with time_machine.travel(T + 15 * MINUTE, tick=False):
        result = run_pipeline(now=T + 15 * MINUTE, full=False)
    assert result["health"]["full"] is False
    assert result["health"]["accounts"] == 1
    assert list(
        HealthScore.objects.filter(computed_at=T + 15 * MINUTE).values_list("account_id", flat=True)
    ) == [book[2].pk]


def test_most_accounts_changed_is_a_full_run(book, monkeypatch):
    monkeypatch.setattr(scoring, "FULL_ABOVE_SHARE", 0.25)
    with time_machine.travel(T + 10 * MINUTE, tick=False):
        login(book[0], when=T + 5 * MINUTE, received=T + 10 * MINUTE)
    assert recompute_changed(now=T + 15 * MINUTE).full is False  # 1 of 4: not above a quarter
    with time_machine.travel(T + 20 * MINUTE, tick=False):
        for account in book[:2]:
            login(account, when=T + 20 * MINUTE, received=T + 20 * MINUTE)
    changes = recompute_changed(now=T + 30 * MINUTE)
    assert changes.full is True and changes.accounts == len(book)


def test_what_took_effect_by_the_previous_run_is_not_a_change(linear_logins):  # noqa: F811
    with time_machine.travel(T - 60 * MINUTE, tick=False):
        account = AccountFactory(external_id="seen")
        set_override(
            actor=None, account=account, band="red", reason="Brief", expires_at=T, now=T - 60 * MINUTE
        )
    recompute_health(now=T)  # the override had expired when this run read it
    assert changed_account_ids(since=T, now=T + 15 * MINUTE) == set()


def placed_and_settled() -> None:
    """A full pipeline run at T+5 (it places every account), then an incremental one at T+20 (it
    sees the placement's stage changes): the runs after these start from a settled state."""
    with time_machine.travel(T + 5 * MINUTE, tick=False):
        run_pipeline(now=T + 5 * MINUTE)
    with time_machine.travel(T + 20 * MINUTE, tick=False):
        run_pipeline(now=T + 20 * MINUTE, full=False)


def test_an_incremental_pipeline_with_nothing_changed_rescores_nobody(book):
    """The common 15-minute run: no account changed, so every scoped query has an empty scope."""
    placed_and_settled()
    with time_machine.travel(T + 35 * MINUTE, tick=False):
        result = run_pipeline(now=T + 35 * MINUTE, full=False)
    assert result["health"]["full"] is False
    assert result["health"]["accounts"] == 0
    assert result["playbooks"]["full"] is False
    assert result["playbooks"]["accounts"] == 0
    assert not HealthScore.objects.filter(computed_at=T + 35 * MINUTE).exists()


def test_events_received_since_the_previous_run_are_found_through_the_brin_index(book):
    """At 1M accounts a scan of every event each 15 minutes would cost seconds (docs/performance.md)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a handful of rows: force the index if usable
        cursor.execute(
            "EXPLAIN SELECT account_id FROM accounts_event WHERE received_at > %s AND received_at <= %s",
            [T, T + 15 * MINUTE],
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "event_received_brin" in plan


def test_changes_read_for_another_span_are_read_again(book):
    """The pipeline hands its steps what it read; a step whose span differs reads its own."""
    with time_machine.travel(T + 10 * MINUTE, tick=False):
        login(book[1], when=T + 5 * MINUTE, received=T + 10 * MINUTE)
    later = T + 15 * MINUTE
    read_before = scoring.ChangedSince(since=T - 60 * MINUTE, now=later, account_ids=frozenset({book[3].pk}))
    assert read_before.ids_for(since=T, now=later) is None
    changes = recompute_changed(now=later, changed=read_before)
    assert list(HealthScore.objects.filter(computed_at=later).values_list("account_id", flat=True)) == [
        book[1].pk
    ]
    assert changes.accounts == 1
    # For the same span they are used as read (here: an account whose change was not looked up).
    same = scoring.ChangedSince(since=later, now=T + 20 * MINUTE, account_ids=frozenset({book[3].pk}))
    recompute_changed(now=T + 20 * MINUTE, changed=same)
    assert set(
        HealthScore.objects.filter(computed_at=T + 20 * MINUTE).values_list("account_id", flat=True)
    ) == {book[3].pk}


def test_the_playbooks_scope_reads_its_own_span_when_handed_another(book):
    placed_and_settled()
    with time_machine.travel(T + 25 * MINUTE, tick=False):
        login(book[1], when=T + 25 * MINUTE, received=T + 25 * MINUTE)
    later = T + 30 * MINUTE
    other_span = scoring.ChangedSince(since=T, now=later, account_ids=frozenset({book[3].pk}))
    assert changed_scope(now=later, changed=other_span) == changed_scope(now=later) == {book[1].pk}
    same_span = scoring.ChangedSince(since=T + 20 * MINUTE, now=later, account_ids=frozenset({book[3].pk}))
    assert changed_scope(now=later, changed=same_span) == {book[3].pk}
