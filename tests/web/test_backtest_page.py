"""The backtest page: managers run a scorecard against what happened, over their own teams."""

import datetime as dt

from django.utils import timezone

from accounts.ingestion import ingest_events
from accounts.models import Account
from health.models import Scorecard
from tests.factories import AccountFactory


def test_a_manager_backtests_the_default_scorecard_over_their_teams(world, client):
    today = timezone.localdate()
    as_of = today - dt.timedelta(days=200)
    start = as_of - dt.timedelta(days=300)
    active, quiet = [], []
    for i in range(3):
        active.append(AccountFactory(name=f"Busy {i}", team=world.team_a, contract_start=start))
        quiet.append(
            AccountFactory(
                name=f"Quiet {i}",
                team=world.team_a,
                contract_start=start,
                status="churned",
                churned_at=as_of + dt.timedelta(days=30),
            )
        )
    AccountFactory(name="Elsewhere", team=world.team_b, contract_start=start)
    moment = dt.datetime.combine(as_of, dt.time(12), tzinfo=dt.UTC)
    ingest_events(
        raw_rows=[
            {
                "account": a.external_id,
                "name": "login",
                "occurred_at": (moment - dt.timedelta(days=d)).isoformat(),
            }
            for a in active
            for d in range(1, 25)
        ],
        accounts=Account.objects.all(),
        now=timezone.now(),
    )
    scorecard = Scorecard.objects.get(segment="", status="active")
    client.force_login(world.manager_a)

    page = client.get(
        "/backtest/",
        {"scorecard": scorecard.pk, "as_of": as_of.isoformat(), "outcome": "churned", "horizon_days": 180},
    )

    assert page.status_code == 200
    html = page.content.decode()
    assert "AUC 1.000" in html
    assert "6 accounts · 3 with the outcome" in html
    assert "Lift by score decile" in html


def test_backtest_page_refuses_csms_and_explains_bad_input(world, client):
    client.force_login(world.csm_a)
    assert client.get("/backtest/").status_code == 403

    client.force_login(world.manager_a)
    scorecard = Scorecard.objects.get(segment="", status="active")
    future = client.get(
        "/backtest/",
        {
            "scorecard": scorecard.pk,
            "as_of": timezone.localdate().isoformat(),
            "outcome": "churned",
            "horizon_days": 90,
        },
    )
    assert future.status_code == 400
    assert "the outcome window must have ended" in future.content.decode()
    assert client.get("/backtest/").status_code == 200
