"""NPS, CSAT and churn breakdowns against hand-computed values."""

import datetime as dt
from decimal import Decimal

from accounts.models import Account, SurveyResponse
from accounts.visibility import visible_accounts
from health.models import HealthScore, Scorecard
from insights.churn import churn_report
from insights.voice import recent_comments, voice_report
from journeys.models import Journey, Stage, StageChange
from tests.factories import AccountFactory

TODAY = dt.date(2026, 6, 15)


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def answer(account, kind, score, when, comment=""):
    return SurveyResponse.objects.create(
        account=account, kind=kind, score=score, responded_at=at(when), comment=comment
    )


def _voice_world(world):
    x = AccountFactory(segment="smb", stage="adoption", owner=world.csm_a, team=world.team_a)
    y = AccountFactory(segment="ent", stage="renewal", owner=None, team=world.team_a)
    answer(x, "nps", 10, "2026-04-10 10:00")
    answer(x, "nps", 6, "2026-04-20 10:00")
    answer(x, "nps", 8, "2026-05-05 10:00")
    answer(x, "nps", 9, "2026-06-01 00:00", "Great")
    answer(y, "nps", 3, "2026-05-10 10:00", "Slow support")
    answer(y, "nps", 10, "2026-03-31 23:59")  # before the three months
    answer(x, "csat", 5, "2026-04-03 10:00")
    answer(x, "csat", 3, "2026-04-04 10:00")
    answer(y, "csat", 4, "2026-06-02 10:00")
    return x, y


def test_nps_and_csat_by_month_segment_stage_and_csm(world):
    _voice_world(world)

    report = voice_report(accounts=Account.objects.all(), today=TODAY, months=3)

    assert (report.start, report.end) == (dt.date(2026, 4, 1), dt.date(2026, 7, 1))
    months = {m: (n.responses, n.score) for m, n in report.nps_by_month}
    assert months == {
        dt.date(2026, 4, 1): (2, 0.0),  # 10 and 6
        dt.date(2026, 5, 1): (2, -50.0),  # 8 (passive) and 3
        dt.date(2026, 6, 1): (1, 100.0),
    }
    assert (report.nps.responses, report.nps.promoters, report.nps.passives, report.nps.detractors) == (
        5,
        2,
        1,
        2,
    )
    assert report.nps.score == 0.0
    assert {k: v.score for k, v in report.nps_by_segment.items()} == {"smb": 25.0, "ent": -100.0}
    assert {k: v.score for k, v in report.nps_by_stage.items()} == {"adoption": 25.0, "renewal": -100.0}
    assert [(owner, name, nps.score) for owner, name, nps in report.nps_by_csm] == [
        (world.csm_a.pk, "csm_a", 25.0),
        (None, "Unassigned", -100.0),
    ]
    csat = {m: (c.responses, c.average, c.satisfied) for m, c in report.csat_by_month}
    assert csat == {
        dt.date(2026, 4, 1): (2, 4.0, 1),
        dt.date(2026, 5, 1): (0, None, 0),  # an empty month
        dt.date(2026, 6, 1): (1, 4.0, 1),
    }
    assert (report.csat.responses, report.csat.average, report.csat.satisfied_share) == (3, 4.0, 0.6667)
    assert [c.comment for c in report.comments] == ["Great", "Slow support"]


def test_voice_is_scoped_and_empty_periods_read_none(world):
    x, _ = _voice_world(world)

    outsider = voice_report(accounts=visible_accounts(world.csm_b), today=TODAY, months=3)
    assert outsider.nps.responses == 0
    assert outsider.nps.score is None
    assert outsider.csat.average is None
    assert outsider.comments == []
    later = voice_report(accounts=Account.objects.all(), today=dt.date(2027, 6, 15), months=2)
    assert [n.score for _, n in later.nps_by_month] == [None, None]
    assert [c.comment for c in recent_comments(account=x)] == ["Great"]


def _score(account, when: str, band: str) -> None:
    scorecard = Scorecard.objects.order_by("id").first() or Scorecard.objects.create(
        name="Test", version=1, red_below=40, green_from=70
    )
    HealthScore.objects.create(
        account=account, scorecard=scorecard, computed_at=at(when), score=50, band=band
    )


def test_churn_by_stage_reason_band_before_and_segment(db):
    journey = Journey.objects.create(key="churn-test", name="Churn test")
    onboarding = Stage.objects.create(journey=journey, key="onboarding", name="Onboarding", order=1)
    adoption = Stage.objects.create(journey=journey, key="adoption", name="Adoption", order=2)
    churned = Stage.objects.create(
        journey=journey, key="churned", name="Churned", order=3, entered_by="on_churn"
    )

    def churn(when, reason, segment, arr, *, left=None, stage=""):
        account = AccountFactory(
            status="churned",
            churned_at=dt.date.fromisoformat(when),
            churn_reason=reason,
            segment=segment,
            arr=Decimal(arr),
            stage=stage,
        )
        if left is not None:
            StageChange.objects.create(
                account=account,
                journey=journey,
                from_stage=left,
                to_stage=churned,
                changed_at=at(when + " 00:00"),
                cause="churned",
            )
        return account

    c1 = churn("2026-03-01", "price", "smb", 1000, left=adoption, stage="churned")
    _score(c1, "2025-11-20 10:00", "red")  # before 2025-12-01 (90 days before the churn)
    _score(c1, "2026-02-01 10:00", "green")  # too late to count
    churn("2026-04-01", " ", "ent", 5000, stage="onboarding")  # no transition: its stage; no score
    c3 = churn("2026-05-01", "price", "smb", 2000, left=onboarding, stage="churned")
    _score(c3, "2026-01-31 00:00", "yellow")  # exactly 90 days before
    churn("2025-12-01", "price", "smb", 700, left=adoption)  # before the period
    AccountFactory()  # active

    report = churn_report(accounts=Account.objects.all(), start=dt.date(2026, 1, 1), end=dt.date(2026, 6, 30))

    assert report.churned == 3
    assert report.arr_lost == Decimal("8000.00")
    assert report.by_stage == {"onboarding": 2, "adoption": 1}
    assert report.arr_by_stage == {"adoption": Decimal("1000.00"), "onboarding": Decimal("7000.00")}
    assert report.by_reason == {"price": 2, "unknown": 1}
    assert report.by_band_before == {"red": 1, "unscored": 1, "yellow": 1}
    assert report.by_segment == {"smb": 2, "ent": 1}
    assert [row["churned_at"] for row in report.accounts] == [
        dt.date(2026, 5, 1),
        dt.date(2026, 4, 1),
        dt.date(2026, 3, 1),
    ]


def test_churn_report_of_an_empty_period(db):
    AccountFactory(status="churned", churned_at=dt.date(2025, 1, 1))
    report = churn_report(accounts=Account.objects.all(), start=dt.date(2026, 1, 1), end=dt.date(2026, 6, 30))
    assert (report.churned, report.arr_lost, report.by_stage, report.accounts) == (0, Decimal("0.00"), {}, [])
