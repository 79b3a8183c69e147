"""The value and voice reports over the API: scoped to the caller, 400s naming the parameter."""

import datetime as dt

import pytest
import time_machine

from accounts.models import SurveyResponse
from insights.recompute import recompute_insights
from tests.factories import AccountFactory
from tests.insights.conftest import T, buy

REPORTS = ["value", "rfm", "lifecycle", "voice", "churn"]


@pytest.fixture
def two_books(world, value_settings):
    """One buyer in team A (csm_a), one in team B (csm_b); values computed at T."""
    a = AccountFactory(name="Alpha", owner=world.csm_a, team=world.team_a, segment="smb")
    b = AccountFactory(name="Beta", owner=world.csm_b, team=world.team_b, segment="smb")
    buy(a, 10, 100)
    buy(b, 20, 5000)
    buy(b, 30, 5000)
    SurveyResponse.objects.create(
        account=a, kind="nps", score=10, responded_at=T - dt.timedelta(days=3), comment="Love it"
    )
    SurveyResponse.objects.create(
        account=b, kind="nps", score=2, responded_at=T - dt.timedelta(days=3), comment="Secret"
    )
    AccountFactory(
        name="Gone", owner=world.csm_b, team=world.team_b, status="churned", churned_at=dt.date(2026, 5, 1)
    )
    recompute_insights(now=T)
    return a, b


@pytest.mark.parametrize("report", REPORTS)
def test_reports_need_a_login(api, db, report):
    assert api().get(f"/api/v1/reports/{report}/").status_code in (401, 403)


@time_machine.travel(T, tick=False)
def test_a_csm_sees_only_the_figures_of_their_book(api, world, two_books):
    a, _ = two_books
    client = api(world.csm_a)

    value = client.get("/api/v1/reports/value/").json()
    assert [row["account"] for row in value["top_accounts"]] == [a.pk]
    # smb lost 1 of 3 accounts in the year (churn measured over all accounts): lifetime 3 years.
    assert value["total_clv"] == "210.00"  # 100 x 1 x 0.7 x 3
    rfm = client.get("/api/v1/reports/rfm/?segment=new").json()
    assert [row["account"] for row in rfm["members"]] == [a.pk]
    assert sum(rfm["accounts_by_segment"].values()) == 1
    assert client.get("/api/v1/reports/lifecycle/").json()["buyers"] == 1
    voice = client.get("/api/v1/reports/voice/").json()
    assert voice["nps"]["nps"] == 100.0
    assert [c["comment"] for c in voice["comments"]] == ["Love it"]
    assert client.get("/api/v1/reports/churn/").json()["churned"] == 0

    admin = api(world.admin)
    assert admin.get("/api/v1/reports/voice/").json()["nps"]["responses"] == 2
    assert admin.get("/api/v1/reports/churn/").json()["churned"] == 1
    assert admin.get("/api/v1/reports/lifecycle/").json()["buyers"] == 2


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v1/reports/value/?limit=0", "limit"),
        ("/api/v1/reports/value/?limit=abc", "limit"),
        ("/api/v1/reports/rfm/?segment=vip", "segment"),
        ("/api/v1/reports/rfm/?limit=101", "limit"),
        ("/api/v1/reports/voice/?months=37", "months"),
        ("/api/v1/reports/voice/?months=-1", "months"),
        ("/api/v1/reports/churn/?days=0", "days"),
        ("/api/v1/reports/churn/?days=1.5", "days"),
    ],
)
def test_bad_parameters_are_a_400_naming_the_field(api, world, url, field):
    response = api(world.csm_a).get(url)
    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_accounts_filter_by_rfm_segment(api, world, two_books):
    a, _ = two_books
    admin = api(world.admin)
    new = admin.get("/api/v1/accounts/?rfm_segment=new").json()
    assert [row["id"] for row in new["results"]] == [a.pk]
    assert admin.get("/api/v1/accounts/?rfm_segment=champions").json()["results"] == []
    bad = admin.get("/api/v1/accounts/?rfm_segment=vip")
    assert bad.status_code == 400
    assert "rfm_segment" in bad.json()


def test_the_reports_are_in_the_openapi_schema(api, world):
    schema = api(world.admin).get("/api/schema/?format=json").json()
    for report in REPORTS:
        assert f"/api/v1/reports/{report}/" in schema["paths"]
