"""Renewals and portfolio: the API (API.md, Reports) and the pages give the same figures."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from playbooks.models import Task
from reports.renewals import renewals_report
from tests.factories import AccountFactory
from tests.web.conftest import give_history


@pytest.fixture
def renewing(world):
    today = timezone.localdate()
    red = AccountFactory(
        name="Red",
        owner=world.csm_a,
        team=world.team_a,
        arr=Decimal("10000"),
        renewal_date=today + dt.timedelta(days=10),
    )
    green = AccountFactory(
        name="Green",
        owner=world.csm_a2,
        team=world.team_a,
        arr=Decimal("20000"),
        renewal_date=today + dt.timedelta(days=45),
    )
    AccountFactory(
        name="Unscored",
        owner=world.csm_a,
        team=world.team_a,
        arr=Decimal("4000"),
        renewal_date=today + dt.timedelta(days=80),
    )
    AccountFactory(
        name="Far", owner=world.csm_a, team=world.team_a, renewal_date=today + dt.timedelta(days=400)
    )
    AccountFactory(
        name="Past", owner=world.csm_a, team=world.team_a, renewal_date=today - dt.timedelta(days=1)
    )
    AccountFactory(
        name="Other team", owner=world.csm_b, team=world.team_b, renewal_date=today + dt.timedelta(days=5)
    )
    give_history(red, [(1, 1)])
    give_history(green, [(1, 10)])
    return today


def test_renewals_api_has_the_fields_of_api_md(world, api, renewing):
    response = api(world.manager_a).get("/api/v1/reports/renewals/", {"days": 90})
    assert response.status_code == 200
    body = response.json()
    assert {"window_days", "accounts", "arr_total", "arr_by_band", "forecast_arr", "items"} <= set(body)
    assert body["window_days"] == 90
    assert body["accounts"] == 3
    assert body["arr_total"] == "34000.00"
    assert body["arr_by_band"] == {
        "red": "10000.00",
        "yellow": "0.00",
        "green": "20000.00",
        "unscored": "4000.00",
    }
    # 10000 * 0.5 + 20000 * 0.95 + 4000 * 0.8
    assert body["forecast_arr"] == "27200.00"
    assert [item["name"] for item in body["items"]] == ["Red", "Green", "Unscored"]
    item = body["items"][0]
    assert set(item) >= {"account", "name", "renewal_date", "arr", "health_score", "health_band", "owner"}
    assert (item["arr"], item["health_band"], item["owner"]) == ("10000.00", "red", world.csm_a.pk)
    assert isinstance(item["health_score"], float)


def test_renewal_rates_come_from_settings(world, api, renewing, settings):
    settings.LIFELINE_RENEWAL_RATES = {"red": 0.0, "yellow": 0.5, "green": 1.0, "unscored": 0.25}
    body = api(world.manager_a).get("/api/v1/reports/renewals/", {"days": 90}).json()
    assert body["forecast_arr"] == "21000.00"


@pytest.mark.parametrize("days", ["0", "-5", "abc", "99999", "1.5"])
def test_a_bad_window_is_a_400_naming_days(world, api, days):
    response = api(world.manager_a).get("/api/v1/reports/renewals/", {"days": days})
    assert response.status_code == 400
    assert "days" in response.json()


def test_reports_are_for_managers(world, api):
    assert api(world.csm_a).get("/api/v1/reports/renewals/").status_code == 403
    assert api(world.csm_a).get("/api/v1/reports/portfolio/").status_code == 403
    assert api().get("/api/v1/reports/portfolio/").status_code == 401


def test_the_renewals_page_shows_the_api_figures(world, client, api, renewing):
    client.force_login(world.manager_a)
    response = client.get("/renewals/", {"days": 30})
    report = response.context["report"]
    body = api(world.manager_a).get("/api/v1/reports/renewals/", {"days": 30}).json()
    assert str(report.arr_total) == body["arr_total"] == "10000.00"
    assert str(report.forecast_arr) == body["forecast_arr"]
    page = response.content.decode()
    assert "Red" in page and "Other team" not in page and "Green" not in page.split("<h2>Accounts</h2>")[1]
    assert client.get("/renewals/", {"days": "nonsense"}).status_code == 200


def test_portfolio_per_csm(world, api, client, renewing):
    today = renewing
    red = world.team_a.accounts.get(name="Red")
    Task.objects.create(
        account=red, title="late", assignee=world.csm_a, due_date=today - dt.timedelta(days=2)
    )
    Task.objects.create(
        account=red, title="soon", assignee=world.csm_a, due_date=today + dt.timedelta(days=2)
    )
    body = api(world.manager_a).get("/api/v1/reports/portfolio/").json()
    by_owner = {row["owner"]: row for row in body["csms"]}
    assert set(by_owner) == {world.csm_a.pk, world.csm_a2.pk}
    mine = by_owner[world.csm_a.pk]
    assert mine["accounts"] == 4  # Red, Unscored, Far, Past (active)
    assert mine["band_counts"] == {"red": 1, "yellow": 0, "green": 0, "unscored": 3}
    assert (mine["open_tasks"], mine["overdue_tasks"]) == (2, 1)
    assert by_owner[world.csm_a2.pk]["arr"] == "20000.00"
    client.force_login(world.manager_a)
    page = client.get("/portfolio/").content.decode()
    assert "1 overdue" in page


def test_renewals_report_is_two_queries(world, renewing, django_assert_num_queries):
    with django_assert_num_queries(2):  # the accounts, and the newest learned renewal rates
        renewals_report(accounts=world.team_a.accounts.all(), days=180, today=renewing)


def test_the_renewals_page_lists_one_page_and_sums_every_account(
    world, client, django_assert_max_num_queries
):
    """A manager's window of many accounts: the totals count all of them, the table shows a page."""
    today = timezone.localdate()
    for i in range(120):
        AccountFactory(
            name=f"Renewing {i:03}",
            owner=world.csm_a if i % 2 else world.csm_a2,
            team=world.team_a,
            arr=Decimal("100"),
            renewal_date=today + dt.timedelta(days=1 + i % 60),
        )
    client.force_login(world.manager_a)
    with django_assert_max_num_queries(7):
        response = client.get("/renewals/", {"days": 90})
    report, page = response.context["report"], response.context["page"]
    assert report.accounts == 120 and report.arr_total == Decimal("12000.00")
    assert sorted(owner.accounts for owner in report.owners) == [60, 60]
    assert len(page.object_list) == 50 and page.paginator.num_pages == 3
    html = response.content.decode()
    assert html.count('class="strong" href="/accounts/') == 50
    assert "Page 1 of 3" in html and "days=90&amp;page=2" in html
    last = client.get("/renewals/", {"days": 90, "page": 3}).context["page"]
    assert len(last.object_list) == 20
    assert [a.renewal_date for a in last.object_list] == sorted(a.renewal_date for a in last.object_list)


def test_the_renewals_api_lists_every_item_of_a_large_window(world, api):
    today = timezone.localdate()
    for i in range(70):
        AccountFactory(owner=world.csm_a, team=world.team_a, renewal_date=today + dt.timedelta(days=i % 30))
    body = api(world.manager_a).get("/api/v1/reports/renewals/", {"days": 30}).json()
    assert body["accounts"] == len(body["items"]) == 70
    assert [i["renewal_date"] for i in body["items"]] == sorted(i["renewal_date"] for i in body["items"])
