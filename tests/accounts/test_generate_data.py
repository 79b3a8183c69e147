import datetime as dt

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import F

from accounts.generation import SIZES, generate_data, size_for
from accounts.models import Account, Contact, Event, EventDaily, SurveyResponse, Team, Ticket

NOW = dt.datetime(2026, 6, 1, 15, tzinfo=dt.UTC)
TINY = size_for(accounts=50, days=10, events_per_account_day=3)


def _rows(sql: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def _fingerprint() -> list[tuple]:
    """Everything generated, by external ids rather than database ids (sequences move on)."""
    return _rows(
        """
        SELECT a.external_id, a.name, a.segment, a.arr, a.renewal_date,
               e.name, e.occurred_at, e.value, c.email
          FROM accounts_event e JOIN accounts_account a ON a.id = e.account_id
          LEFT JOIN accounts_contact c ON c.id = e.contact_id
         ORDER BY 1, 7, 6, 8, 9
        """
    ) + _rows(
        """
        SELECT a.external_id, t.external_id, t.status, t.opened_at FROM accounts_ticket t
          JOIN accounts_account a ON a.id = t.account_id ORDER BY 2
        """
    )


def test_tiny_size_fills_every_table(db):
    summary = generate_data(size=TINY, seed=3, now=NOW)

    assert Account.objects.count() == summary.accounts == 50
    assert Team.objects.count() == summary.teams == 1
    assert Contact.objects.count() == summary.contacts >= 100
    assert Event.objects.count() == summary.events > 0
    assert Ticket.objects.count() == summary.tickets == 10
    assert SurveyResponse.objects.filter(kind="nps").count() == summary.surveys == 5
    assert EventDaily.objects.count() == summary.event_days
    assert not Event.objects.filter(occurred_at__gt=NOW).exists()
    assert not Event.objects.filter(occurred_at__lt=NOW - dt.timedelta(days=10)).exists()
    assert Account.objects.filter(owner__groups__name="csm", team__members=F("owner")).count() == 50


def test_rollup_equals_a_group_by_over_the_events(db):
    generate_data(size=TINY, seed=3, now=NOW)

    from_events = _rows(
        """
        SELECT account_id, name, (occurred_at AT TIME ZONE 'UTC')::date, COUNT(*), COALESCE(SUM(value), 0)
          FROM accounts_event GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        """
    )
    rollup = _rows("SELECT account_id, name, day, count, value_sum FROM accounts_eventdaily ORDER BY 1, 2, 3")
    assert rollup == from_events


def test_every_reference_points_at_a_row_of_the_same_account(db):
    generate_data(size=TINY, seed=3, now=NOW)

    assert _rows(
        """
        SELECT COUNT(*) FROM accounts_event e
          LEFT JOIN accounts_account a ON a.id = e.account_id
          LEFT JOIN accounts_contact c ON c.id = e.contact_id
         WHERE a.id IS NULL OR c.account_id IS DISTINCT FROM e.account_id
        """
    ) == [(0,)]
    assert _rows(
        """
        SELECT COUNT(*) FROM accounts_surveyresponse s JOIN accounts_contact c ON c.id = s.contact_id
         WHERE c.account_id <> s.account_id
        """
    ) == [(0,)]
    assert _rows(
        """
        SELECT COUNT(*) FROM accounts_account a
          LEFT JOIN auth_user u ON u.id = a.owner_id LEFT JOIN accounts_team t ON t.id = a.team_id
         WHERE u.id IS NULL OR t.id IS NULL
        """
    ) == [(0,)]
    assert not Ticket.objects.filter(closed_at__lt=F("opened_at")).exists()


def test_the_same_seed_gives_the_same_data(db):
    generate_data(size=TINY, seed=3, now=NOW)
    first = _fingerprint()
    Account.objects.all().delete()
    generate_data(size=TINY, seed=3, now=NOW)
    assert _fingerprint() == first

    Account.objects.all().delete()
    generate_data(size=TINY, seed=4, now=NOW)
    assert _fingerprint() != first


def test_a_database_with_accounts_is_refused_unless_appending(db):
    generate_data(size=TINY, seed=3, now=NOW)

    with pytest.raises(CommandError, match="--append"):
        call_command("generate_data", "--accounts", "5", "--days", "3", verbosity=0)
    call_command("generate_data", "--accounts", "5", "--days", "3", "--append", verbosity=0)
    assert Account.objects.count() == 55
    assert Account.objects.values("external_id").distinct().count() == 55


def test_sqlite_is_refused_with_a_clear_message(db, monkeypatch):
    monkeypatch.setattr(connection, "vendor", "sqlite")

    with pytest.raises(CommandError, match="PostgreSQL's COPY"):
        call_command("generate_data", "--accounts", "5", verbosity=0)


def test_named_sizes_match_the_issue():
    assert SIZES["S"].accounts == 100_000
    assert round(SIZES["S"].accounts * SIZES["S"].days * SIZES["S"].events_per_account_day) == 5_000_000
    large = SIZES["L"]
    assert (large.accounts, large.tickets, large.nps, large.teams, large.csms) == (
        1_000_000,
        200_000,
        100_000,
        50,
        500,
    )
    assert round(large.accounts * large.days * large.events_per_account_day) == 50_000_000
