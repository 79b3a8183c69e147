"""My book: filters and sorting from a bookmarkable URL, health trend, summary cards."""

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from accounts.models import Account
from playbooks.models import Task
from tests.factories import AccountFactory
from tests.web.conftest import give_history


def names(response) -> list[str]:
    return [account.name for account, _ in response.context["rows"]]


def test_filters_by_band_stage_segment_renewal_and_owner(world, client):
    today = timezone.localdate()
    red = AccountFactory(
        name="Red one",
        owner=world.csm_a,
        team=world.team_a,
        segment="smb",
        stage="adoption",
        renewal_date=today + dt.timedelta(days=20),
    )
    green = AccountFactory(
        name="Green one",
        owner=world.csm_a2,
        team=world.team_a,
        segment="enterprise",
        stage="renewal",
        renewal_date=today + dt.timedelta(days=100),
    )
    AccountFactory(name="Unscored one", owner=None, team=world.team_a, segment="smb", stage="onboarding")
    give_history(red, [(1, 1)])
    give_history(green, [(1, 10)])
    client.force_login(world.csm_a)

    assert names(client.get("/", {"band": "red"})) == ["Red one"]
    assert set(names(client.get("/", {"band": ["green", "unscored"]}))) == {"Green one", "Unscored one"}
    assert names(client.get("/", {"stage": "renewal"})) == ["Green one"]
    assert set(names(client.get("/", {"segment": "smb"}))) == {"Red one", "Unscored one"}
    assert names(client.get("/", {"renewal": "30"})) == ["Red one"]
    assert names(client.get("/", {"owner": "me"})) == ["Red one"]
    assert names(client.get("/", {"owner": world.csm_a2.pk})) == ["Green one"]
    assert names(client.get("/", {"owner": "none"})) == ["Unscored one"]
    assert names(client.get("/", {"band": "red", "segment": "enterprise"})) == []


def test_bad_filter_values_are_shown_not_a_500(world, client, account_a):
    client.force_login(world.csm_a)
    response = client.get(
        "/", {"band": "purple", "renewal": "7", "owner": "x'; drop", "sort": "-nope", "page": "abc"}
    )
    assert response.status_code == 200
    assert "Acme" in response.content.decode()
    assert response.context["form"].errors


def test_sort_by_health_and_by_change(world, client):
    a = AccountFactory(name="Falling", team=world.team_a)
    b = AccountFactory(name="Rising", team=world.team_a)
    c = AccountFactory(name="Never scored", team=world.team_a)
    give_history(a, [(40, 10), (1, 3)])  # 100 → 53.3
    give_history(b, [(40, 2), (1, 6)])  # 46.7 → 73.3
    client.force_login(world.manager_a)
    assert names(client.get("/", {"sort": "-health"})) == ["Rising", "Falling", "Never scored"]
    assert names(client.get("/", {"sort": "health"})) == ["Falling", "Rising", "Never scored"]
    response = client.get("/", {"sort": "change"})
    assert names(response) == ["Falling", "Rising", "Never scored"]
    changes = {account.name: account.change_30d for account, _ in response.context["rows"]}
    assert changes == {"Falling": Decimal("-46.7"), "Rising": Decimal("26.6"), "Never scored": None}
    assert c.health_score is None


def test_rows_carry_a_sparkline_and_open_tasks(world, client, account_a):
    give_history(account_a, [(80, 9), (60, 8), (30, 6), (1, 2)])
    Task.objects.create(account=account_a, title="t", assignee=world.csm_a, due_date=timezone.localdate())
    client.force_login(world.csm_a)
    response = client.get("/")
    ((account, spark),) = response.context["rows"]
    assert account.open_tasks == 1
    assert "<svg" in spark and "polyline" in spark
    assert spark.count(",") == 4  # the four scores of the last 90 days


def test_summary_cards_count_accounts_and_arr_by_band(world, client):
    for arr, logins in (("1000", 0), ("2000", 1), ("5000", 10)):
        give_history(AccountFactory(team=world.team_a, arr=Decimal(arr)), [(1, logins)])
    AccountFactory(team=world.team_a, arr=Decimal("700"))
    AccountFactory(team=world.team_b, arr=Decimal("99999"))
    client.force_login(world.manager_a)
    totals = {t.band: (t.accounts, t.arr) for t in client.get("/").context["totals"]}
    assert totals == {
        "red": (2, Decimal("3000")),
        "yellow": (0, Decimal("0")),
        "green": (1, Decimal("5000")),
        "unscored": (1, Decimal("700")),
    }


def test_churned_accounts_are_left_out_unless_asked(world, client):
    AccountFactory(name="Gone", team=world.team_a, status=Account.Status.CHURNED)
    client.force_login(world.manager_a)
    assert names(client.get("/")) == []
    assert names(client.get("/", {"status": "churned"})) == ["Gone"]
    assert names(client.get("/", {"q": "gone"})) == ["Gone"]


def test_pages_are_counted_from_the_band_totals_of_the_filtered_book(world, client):
    """The pager's count is the band totals' sum (no COUNT of its own): it must follow the filter."""
    for i in range(60):
        AccountFactory(
            name=f"Book {i:02}", owner=world.csm_a, team=world.team_a, segment="smb" if i % 3 else "ent"
        )
    client.force_login(world.csm_a)
    page = client.get("/").context["page"]
    assert (page.paginator.count, page.paginator.num_pages, len(page.object_list)) == (60, 2, 50)
    assert len(client.get("/", {"page": 2}).context["page"].object_list) == 10
    filtered = client.get("/", {"segment": "ent"}).context["page"]
    assert (filtered.paginator.count, filtered.paginator.num_pages) == (20, 1)
    assert {account.segment for account in filtered.object_list} == {"ent"}
