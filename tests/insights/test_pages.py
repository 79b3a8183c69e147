"""The value, voice and churn pages: render with charts, scoped, a fixed number of queries."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone
from django.utils.html import escape

from accounts.models import SurveyResponse
from insights.models import AccountValue
from insights.recompute import recompute_insights
from tests.factories import AccountFactory

PAGES = ["/value/", "/voice/", "/churn/"]


def grow(world, size: int) -> None:
    """``size`` accounts in team A with purchases, answers and churn; one secret account in team B."""
    now = timezone.now()
    from accounts.models import Event

    for i in range(size):
        account = AccountFactory(
            name=f"A{i}",
            owner=world.csm_a,
            team=world.team_a,
            segment=("smb", "mid", "ent")[i % 3],
            stage=("onboarding", "adoption")[i % 2],
            status="churned" if i % 5 == 4 else "active",
            churned_at=(now - dt.timedelta(days=20)).date() if i % 5 == 4 else None,
            churn_reason="price" if i % 5 == 4 else "",
        )
        for j in range(i % 4 + 1):
            Event.objects.create(
                account=account,
                name="order",
                occurred_at=now - dt.timedelta(days=5 + 40 * j + i),
                value=10 * (i + 1),
            )
        SurveyResponse.objects.create(
            account=account,
            kind="nps",
            score=i % 11,
            responded_at=now - dt.timedelta(days=i),
            comment=f"Comment {i}",
        )
        SurveyResponse.objects.create(
            account=account, kind="csat", score=i % 5 + 1, responded_at=now - dt.timedelta(days=i)
        )
    secret = AccountFactory(name="Secret", owner=world.csm_b, team=world.team_b)
    SurveyResponse.objects.create(
        account=secret, kind="nps", score=0, responded_at=now, comment="Top secret remark"
    )
    recompute_insights(now=now)


@pytest.mark.parametrize("size", [3, 30])
def test_pages_cost_the_same_for_few_and_many_rows(
    world, client, value_settings, size, django_assert_max_num_queries
):
    grow(world, size)
    client.force_login(world.csm_a)
    for url, limit in {"/value/": 15, "/voice/": 12, "/churn/": 8}.items():
        with django_assert_max_num_queries(limit):
            response = client.get(url)
        assert response.status_code == 200, url
        assert b"<svg" in response.content


def test_pages_show_only_the_users_accounts(world, client, value_settings):
    grow(world, 5)
    client.force_login(world.csm_a)
    voice = client.get("/voice/").content.decode()
    assert "Comment 3" in voice
    assert "Top secret remark" not in voice
    value = client.get("/value/").content.decode()
    assert "Secret" not in value
    assert "A4" in client.get("/churn/").content.decode()
    client.force_login(world.csm_b)
    assert "A4" not in client.get("/churn/").content.decode()


def test_bad_periods_fall_back_with_a_message(world, client, value_settings):
    client.force_login(world.csm_a)
    response = client.get("/voice/?months=99")
    assert response.status_code == 200
    assert response.context["months"] == 12
    assert "months" in response.content.decode()
    assert client.get("/churn/?days=x").context["days"] == 365


def test_pages_need_a_login(client, db):
    for url in PAGES:
        assert client.get(url).status_code == 302


def test_the_account_page_shows_value_and_comments(world, client, value_settings):
    grow(world, 4)
    account = AccountValue.objects.select_related("account").get(account__name="A3").account
    client.force_login(world.csm_a)
    page = client.get(f"/accounts/{account.pk}/").content.decode()
    value = AccountValue.objects.get(account=account)
    assert "Value and voice" in page
    assert escape(value.get_rfm_segment_display()) in page
    assert "Comment 3" in page
    assert escape(value.get_lifecycle_display()) in page


def test_my_book_filters_by_rfm_segment(world, client, value_settings):
    grow(world, 6)
    segment = AccountValue.objects.exclude(rfm_segment="").values_list("rfm_segment", flat=True).first()
    expected = set(
        AccountValue.objects.filter(rfm_segment=segment, account__status="active").values_list(
            "account__name", flat=True
        )
    )
    client.force_login(world.csm_a)
    response = client.get(f"/?rfm_segment={segment}")
    assert {account.name for account, _ in response.context["rows"]} == expected
    assert client.get("/?rfm_segment=vip").status_code == 200  # shown as a form error, not a 500


def test_the_value_settings_are_edited_in_the_admin(admin_client, value_settings):
    client = admin_client
    url = f"/admin/insights/valuesettings/{value_settings.pk}/change/"
    assert client.get(url).status_code == 200
    data = {
        "value_events": '["order"]',
        "default_gross_margin": "0.5",
        "segment_margins": '{"smb": 2}',
        "window_days": "365",
        "quiet_days": "90",
        "max_lifetime_years": "10",
    }
    response = client.post(url, data)
    assert response.status_code == 200  # refused: a margin above 1
    assert "must be a number between 0 and 1" in response.content.decode()
    response = client.post(url, {**data, "segment_margins": '{"smb": 0.6}'})
    assert response.status_code == 302
    value_settings.refresh_from_db()
    assert value_settings.value_events == ["order"]
    assert value_settings.margin_for("smb") == Decimal("0.6")
    assert value_settings.margin_for("ent") == Decimal("0.500")
