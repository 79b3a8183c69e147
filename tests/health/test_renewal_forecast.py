"""The learned renewal forecast: rates per band from past renewals and churns, the band 90 days before."""

import datetime as dt
from decimal import Decimal
from io import StringIO

from django.core.management import call_command

from accounts.changes import update_account
from health.models import HealthScore
from health.renewal_forecast import forecast_rates, learn_renewal_rates
from reports.renewals import renewal_rates
from tests.factories import AccountFactory

TODAY = dt.date(2026, 12, 1)
OUTCOME_DAY = dt.date(2026, 8, 1)  # 90 days before: 2026-05-03


def scored(account, band: str, day: str, scorecard) -> None:
    HealthScore.objects.create(
        account=account,
        scorecard=scorecard,
        computed_at=dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC),
        score=Decimal(20 if band == "red" else 90),
        computed_band=band,
        band=band,
    )


def renewed(account) -> None:
    """The CRM rolls the renewal date on by a year (audited, as every renewal date change is)."""
    update_account(actor=None, account=account, values={"renewal_date": dt.date(2027, 8, 1)})


def churned(account, day: dt.date = OUTCOME_DAY) -> None:
    account.status, account.churned_at = "churned", day
    account.save(update_fields=["status", "churned_at"])


def history(card) -> None:
    """Red: one renewal, one churn. Green: two renewals. Unscored: a churn with no score and a renewal
    whose only score is older than the 14 days' tolerance. Outside the year: one churn."""
    red_churn = AccountFactory(renewal_date=OUTCOME_DAY)
    scored(red_churn, "red", "2026-05-01 00:00", card)
    scored(red_churn, "green", "2026-05-04 00:00", card)  # after the cutoff: ignored
    churned(red_churn)
    for band in ("red", "green", "green"):
        account = AccountFactory(renewal_date=OUTCOME_DAY)
        scored(account, band, "2026-05-03 23:00", card)
        renewed(account)
    churned(AccountFactory(renewal_date=OUTCOME_DAY))
    stale = AccountFactory(renewal_date=OUTCOME_DAY)
    scored(stale, "green", "2026-04-15 00:00", card)
    renewed(stale)
    churned(AccountFactory(), dt.date(2025, 11, 30))


def test_rates_are_learned_per_band_from_the_band_ninety_days_before(linear_logins):
    history(linear_logins)
    learned = learn_renewal_rates(today=TODAY, min_outcomes=2)
    counts = {band: (o.renewals, o.churns, o.rate) for band, o in learned.items()}
    assert counts == {
        "red": (1, 1, 0.5),
        "yellow": (0, 0, None),
        "green": (2, 0, 1.0),
        "unscored": (1, 1, 0.5),
    }
    assert learn_renewal_rates(today=TODAY, min_outcomes=3)["green"].rate is None


def test_the_renewals_forecast_uses_the_newest_snapshot_and_defaults_where_too_few(linear_logins, settings):
    settings.LIFELINE_RENEWAL_RATES = {"red": 0.3, "yellow": 0.7, "green": 0.9, "unscored": 0.6}
    assert renewal_rates()["green"] == Decimal("0.9")  # no history learned yet
    history(linear_logins)
    out = StringIO()
    call_command("learn_renewal_rates", "--today", TODAY.isoformat(), "--min-outcomes", "2", stdout=out)
    assert "green" in out.getvalue()
    rates = renewal_rates()
    assert (rates["red"], rates["yellow"], rates["green"]) == (Decimal("0.5"), Decimal("0.7"), Decimal("1.0"))
    assert forecast_rates(defaults={"yellow": Decimal("0.1")}) == {"yellow": Decimal("0.1")}


# --- forecast accuracy ------------------------------------------------------------------------

RATES = {"red": Decimal("0.5"), "yellow": Decimal("0.8"), "green": Decimal("0.9"), "unscored": Decimal("0.8")}


def test_forecasts_are_kept_once_per_lead_and_graded_once_known(db):
    from health.models import RenewalForecast
    from health.renewal_forecast import forecast_accuracy, snapshot_renewal_forecasts

    day = dt.date(2026, 6, 1)
    a = AccountFactory(renewal_date=dt.date(2026, 8, 15), health_band="green", arr=1000)  # 75 days: lead 90
    b = AccountFactory(renewal_date=dt.date(2026, 6, 20), health_band="red", arr=2000)  # 19 days: lead 30
    AccountFactory(renewal_date=dt.date(2026, 7, 1), health_band="green", arr=500)  # lead 30, never known
    AccountFactory(renewal_date=dt.date(2026, 12, 1))  # too far
    AccountFactory(renewal_date=dt.date(2026, 7, 1), status="churned", churned_at=dt.date(2026, 5, 1))
    assert snapshot_renewal_forecasts(today=day, rates=RATES) == 3
    assert snapshot_renewal_forecasts(today=day, rates=RATES) == 0  # safe to run twice
    assert snapshot_renewal_forecasts(today=dt.date(2026, 7, 21), rates=RATES) == 1  # a, now 25 days out
    assert RenewalForecast.objects.filter(account=a).count() == 2
    renewed(a)  # renewal date rolled forward to 2027-08-01
    churned(b, dt.date(2026, 6, 25))
    rows = {(r.lead, r.band): r for r in forecast_accuracy()}
    assert set(rows) == {(90, "green"), (90, "all"), (30, "red"), (30, "green"), (30, "all")}
    lead_90 = rows[90, "all"]
    assert (lead_90.graded, lead_90.forecast_rate, lead_90.actual_rate) == (1, 0.9, 1.0)
    assert (lead_90.forecast_arr, lead_90.renewed_arr) == (Decimal("900.00"), Decimal("1000.00"))
    lead_30 = rows[30, "all"]
    assert (lead_30.graded, lead_30.pending, lead_30.forecast_rate, lead_30.actual_rate) == (2, 1, 0.7, 0.5)
    assert (lead_30.forecast_arr, lead_30.renewed_arr, lead_30.error_arr) == (
        Decimal("1900.00"),
        Decimal("1000.00"),
        Decimal("900.00"),
    )
    assert (rows[30, "red"].actual_rate, rows[30, "green"].pending) == (0.0, 1)
    out = StringIO()
    call_command("forecast_accuracy", stdout=out)
    assert "1900.00" in out.getvalue()


def test_the_admin_lists_learned_rates_and_kept_forecasts(world, client):
    client.force_login(world.admin)
    world.admin.is_staff = world.admin.is_superuser = True
    world.admin.save(update_fields=["is_staff", "is_superuser"])
    call_command("learn_renewal_rates", "--today", TODAY.isoformat(), stdout=StringIO())
    assert client.get("/admin/health/renewalrates/").status_code == 200
    assert client.get("/admin/health/renewalforecast/").status_code == 200


def test_the_daily_task_learns_and_keeps_todays_forecasts(db):
    from django.utils import timezone

    from health.models import RenewalForecast, RenewalRates
    from health.tasks import renewal_forecast_task

    today = timezone.now().date()
    AccountFactory(renewal_date=today + dt.timedelta(days=10), health_band="green")
    assert renewal_forecast_task() == 1
    assert renewal_forecast_task() == 0
    assert RenewalRates.objects.filter(learned_on=today).count() == 1
    assert RenewalForecast.objects.get().lead == 30


def test_the_renewal_forecast_report_shows_rates_and_accuracy_within_the_callers_scope(world, api, settings):
    from health.renewal_forecast import snapshot_renewal_forecasts, snapshot_renewal_rates

    settings.LIFELINE_RENEWAL_RATES = {"red": 0.3, "yellow": 0.7, "green": 0.9, "unscored": 0.6}
    day = dt.date(2026, 6, 1)
    ours = AccountFactory(team=world.team_a, renewal_date=dt.date(2026, 8, 15), health_band="green", arr=1000)
    theirs = AccountFactory(team=world.team_b, renewal_date=dt.date(2026, 8, 20), health_band="red", arr=5000)
    snapshot_renewal_forecasts(today=day, rates=RATES)
    snapshot_renewal_rates(today=day, min_outcomes=20)
    renewed(ours)
    churned(theirs, dt.date(2026, 8, 25))

    body = api(world.manager_a).get("/api/v1/reports/renewal-forecast/").json()

    assert body["learned_on"] == "2026-06-01"
    assert body["rates"]["green"] == {
        "rate": 0.9,
        "source": "default",
        "default": 0.9,
        "renewals": 0,
        "churns": 0,
    }
    overall = next(row for row in body["accuracy"] if row["band"] == "all")
    assert (overall["lead_days"], overall["graded"], overall["forecast_arr"], overall["renewed_arr"]) == (
        90,
        1,
        "900.00",
        "1000.00",
    )
    assert {row["band"] for row in body["accuracy"]} == {"green", "all"}  # team B's red forecast is not ours
    admin_rows = api(world.admin).get("/api/v1/reports/renewal-forecast/").json()["accuracy"]
    assert {row["band"] for row in admin_rows} == {"green", "red", "all"}
    assert api(world.csm_a).get("/api/v1/reports/renewal-forecast/").status_code == 403
    assert api().get("/api/v1/reports/renewal-forecast/").status_code == 401
