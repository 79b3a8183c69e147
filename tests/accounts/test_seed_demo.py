"""manage.py seed_demo: users, teams, accounts and a consistent history, deterministically."""

import datetime as dt
from collections import Counter
from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Count, Sum
from django.db.models.functions import TruncDate

from accounts.models import Account, Contact, Event, EventDaily, SurveyResponse, Team, Ticket, Touchpoint

NOW = "2026-06-15T12:00:00+00:00"
TODAY = dt.date(2026, 6, 15)


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", "--accounts", "30", "--now", NOW, *args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.fixture
def seeded(db) -> str:
    return seed()


@pytest.mark.django_db
def test_users_have_their_roles_and_teams(seeded):
    users = {user.username: user for user in get_user_model().objects.prefetch_related("groups")}
    roles = {name: sorted(group.name for group in user.groups.all()) for name, user in users.items()}

    assert roles == {
        "admin": ["admin"],
        "manager1": ["manager"],
        "manager2": ["manager"],
        **{f"csm{n}": ["csm"] for n in range(1, 7)},
    }
    assert users["admin"].is_superuser and users["admin"].is_staff
    assert not users["manager1"].is_staff and not users["manager1"].is_superuser
    assert all(user.check_password("lifeline") for user in users.values())
    assert all(user.email.endswith("@lifeline.example") and user.first_name for user in users.values())
    teams = {team.name: team for team in Team.objects.all()}
    assert teams["North"].manager == users["manager1"]
    assert teams["South"].manager == users["manager2"]
    assert {u.username for u in teams["North"].members.all()} == {"csm1", "csm2", "csm3"}
    assert {u.username for u in teams["South"].members.all()} == {"csm4", "csm5", "csm6"}
    assert "accounts        30" in seeded
    assert "csm4      lifeline  csm      South" in seeded


@pytest.mark.django_db
def test_accounts_cover_every_segment_and_are_owned_within_their_team(seeded):
    accounts = list(Account.objects.select_related("owner", "team"))

    assert len(accounts) == 30
    assert {a.segment for a in accounts} == {"smb", "mid-market", "enterprise"}
    assert all(a.currency == "USD" and a.external_id.startswith("crm-") for a in accounts)
    assert all(a.owner in a.team.members.all() for a in accounts)
    assert len({a.name for a in accounts}) == 30
    arr_ranges = {"smb": (5_000, 25_000), "mid-market": (25_000, 120_000), "enterprise": (120_000, 900_000)}
    for account in accounts:
        low, high = arr_ranges[account.segment]
        assert low <= account.arr <= high, account
    contacts = Counter(Contact.objects.values_list("account_id", flat=True))
    assert all(2 <= contacts[a.pk] <= 6 for a in accounts)


@pytest.mark.django_db
def test_active_accounts_renew_within_twelve_months_and_churned_ones_have_a_reason(seeded):
    active = Account.objects.filter(status=Account.Status.ACTIVE)
    churned = Account.objects.filter(status=Account.Status.CHURNED)

    assert active.exists() and churned.exists()
    for account in active:
        assert TODAY < account.renewal_date <= TODAY + dt.timedelta(days=365), account
        assert account.contract_start < TODAY
    for account in churned:
        assert account.churned_at < TODAY and account.churn_reason


@pytest.mark.django_db
def test_history_is_stored_with_a_rollup_equal_to_the_events(seeded):
    by_day = {
        (row["account_id"], row["name"], row["day"]): (row["count"], row["value_sum"] or Decimal(0))
        for row in Event.objects.annotate(day=TruncDate("occurred_at", tzinfo=dt.UTC))
        .values("account_id", "name", "day")
        .annotate(count=Count("id"), value_sum=Sum("value"))
    }
    rollup = {
        (row.account_id, row.name, row.day): (row.count, row.value_sum) for row in EventDaily.objects.all()
    }

    assert by_day == rollup
    assert Event.objects.count() > 1_000
    assert not Event.objects.filter(occurred_at__gt=dt.datetime.fromisoformat(NOW)).exists()
    assert not Event.objects.filter(contact__isnull=True).exists()
    assert set(Event.objects.values_list("name", flat=True).distinct()) >= {
        "login",
        "report_viewed",
        "export",
        "invite_sent",
        "integration_connected",
        "order_placed",
    }
    assert Ticket.objects.exists() and Touchpoint.objects.exists()
    assert SurveyResponse.objects.filter(kind="nps").exists()
    assert SurveyResponse.objects.filter(kind="csat").exists()


@pytest.mark.django_db
def test_a_second_run_never_duplicates_and_if_empty_makes_it_a_no_op(seeded):
    counts = (Account.objects.count(), Event.objects.count(), get_user_model().objects.count())

    with pytest.raises(CommandError, match="already has accounts"):
        seed()
    output = seed("--if-empty")

    assert "already has accounts" in output
    assert (Account.objects.count(), Event.objects.count(), get_user_model().objects.count()) == counts


@pytest.mark.django_db
def test_same_seed_and_now_give_the_same_data(seeded):
    def snapshot():
        accounts = Account.objects.order_by("external_id")
        return (
            list(
                accounts.values_list(
                    "external_id", "name", "arr", "segment", "renewal_date", "owner__username"
                )
            ),
            list(
                EventDaily.objects.order_by("account__external_id", "name", "day").values_list(
                    "account__external_id", "name", "day", "count", "value_sum"
                )
            ),
        )

    first = snapshot()
    Account.objects.all().delete()

    seed()

    assert snapshot() == first
