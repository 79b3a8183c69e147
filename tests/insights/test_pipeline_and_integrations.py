"""The insights step (idempotent, locked, before health), its metrics, triggers and filters."""

import datetime as dt
from decimal import Decimal

import time_machine

from accounts.models import Account, SurveyResponse
from health.metrics import MetricCache, compute, validate_params
from insights.models import AccountValue, PlaybookValueFilter, RfmSegment
from insights.recompute import recompute_insights, run_insights_step
from playbooks.actions import fire_playbook
from playbooks.models import PlaybookRun, Task
from playbooks.pipeline import run_pipeline
from playbooks.triggers import evaluate_trigger, trigger_param_errors
from tests.factories import AccountFactory, PlaybookFactory, TaskStepFactory
from tests.insights.conftest import T, buy

HOUR = dt.timedelta(hours=1)


def five_buyers():
    """The five accounts of test_rfm: champions, loyal, potential loyalists, at risk, lost."""
    accounts = []
    for purchases, value in (
        ((1, 2, 3, 4, 5), 100),
        ((10, 20, 30, 40), 50),
        ((50, 60, 70), 10),
        ((100, 150), 400),
        ((200,), 60),
    ):
        account = AccountFactory()
        for days in purchases:
            buy(account, days, value)
        accounts.append(account)
    return accounts


def test_the_step_stores_every_account_and_a_rerun_changes_nothing(value_settings):
    accounts = five_buyers()
    never = AccountFactory()

    first = recompute_insights(now=T)
    stored = {v.account_id: v for v in AccountValue.objects.all()}
    second = recompute_insights(now=T)

    assert first.counts() == {"accounts": 6, "buyers": 5, "segment_changes": 5, "written": 6}
    # Nothing changed: no row is rewritten, every row keeps the time its figures were computed.
    assert second.counts() == {"accounts": 6, "buyers": 5, "segment_changes": 0, "written": 0}
    assert AccountValue.objects.count() == 6
    assert stored[never.pk].rfm_segment == "" and stored[never.pk].clv is None
    at_risk = AccountValue.objects.get(account=accounts[3])
    assert (at_risk.rfm_segment, at_risk.rfm_segment_since, at_risk.previous_rfm_segment) == (
        "at_risk",
        T,
        "",
    )
    assert (at_risk.r_score, at_risk.f_score, at_risk.m_score, at_risk.rfm_score) == (2, 2, 5, 9)
    assert at_risk.lifecycle == "lapsed"  # last bought 100 days ago
    assert at_risk.clv == Decimal("5600.00")  # 800 x 0.7 x 10
    assert [v.rfm_segment_since for v in AccountValue.objects.all() if v.rfm_segment] == [T] * 5


def test_a_rerun_rewrites_only_the_accounts_whose_figures_changed(value_settings):
    accounts = five_buyers()
    recompute_insights(now=T)
    buy(accounts[0], 0.5, 1000)  # a big order: this account's figures (and maybe others' scores) move
    AccountValue.objects.filter(account=accounts[1]).update(clv=Decimal("1.23"))  # stale: rewritten
    before = {v.account_id: v for v in AccountValue.objects.all()}

    result = recompute_insights(now=T + HOUR)

    after = {v.account_id: v for v in AccountValue.objects.all()}
    assert 2 <= result.written < len(after)
    assert after[accounts[0].pk].purchases == before[accounts[0].pk].purchases + 1
    assert after[accounts[1].pk].clv != Decimal("1.23")
    # The rewritten rows say when; the others keep the time their figures were computed.
    rewritten = {pk for pk, v in after.items() if v.computed_at == T + HOUR}
    assert len(rewritten) == result.written
    assert {accounts[0].pk, accounts[1].pk} <= rewritten
    assert {v.computed_at for pk, v in after.items() if pk not in rewritten} == {T}


def test_a_day_without_purchases_rewrites_nothing_and_the_recency_is_read_as_of_now(value_settings):
    """The recency moves every day for every buyer; it is derived when read, not rewritten daily."""
    from insights.purchases import window_purchases

    accounts = five_buyers()
    lapsed_long_ago = AccountFactory()
    buy(lapsed_long_ago, 500, 80)  # before the window: no recency
    recompute_insights(now=T)
    settings = value_settings
    windows = window_purchases(names=settings.value_events, as_of=T, window_days=settings.window_days)

    result = recompute_insights(now=T + dt.timedelta(days=1))

    assert result.written == 0
    stored = {v.account_id: v for v in AccountValue.objects.all()}
    assert {v.computed_at for v in stored.values()} == {T}
    with time_machine.travel(T, tick=False):  # as of the run: the window's own recency
        assert {pk: stored[pk].recency_days for pk in windows} == {
            pk: w.recency_days for pk, w in windows.items()
        }
    with time_machine.travel(T + dt.timedelta(days=3, hours=1), tick=False):
        assert {pk: stored[pk].recency_days for pk in windows} == {
            pk: w.recency_days + 3 for pk, w in windows.items()
        }
    assert stored[lapsed_long_ago.pk].last_purchase_at is not None
    assert stored[lapsed_long_ago.pk].recency_days is None
    assert set(windows) == {a.pk for a in accounts if stored[a.pk].window_purchases}


def test_a_segment_change_records_the_previous_segment_and_its_entry(value_settings):
    accounts = five_buyers()
    recompute_insights(now=T)
    buy(accounts[4], 0.5, 60)  # the lost account buys again: recent, two purchases
    later = T + HOUR

    result = recompute_insights(now=later)

    value = AccountValue.objects.get(account=accounts[4])
    assert result.segment_changes >= 1
    assert value.previous_rfm_segment == RfmSegment.LOST
    assert value.rfm_segment != RfmSegment.LOST
    assert value.rfm_segment_since == later


def test_the_locked_step_skips_and_the_pipeline_runs_it_before_health(value_settings):
    five_buyers()
    result = run_pipeline(now=T)
    assert result["insights"]["accounts"] == 5
    assert list(result) == ["journeys", "insights", "health", "playbooks", "delivery"]
    assert run_insights_step(now=T).counts()["segment_changes"] == 0


def test_segment_entered_fires_once_per_entry(value_settings):
    accounts = five_buyers()
    playbook = PlaybookFactory(
        trigger="segment_entered", trigger_params={"segment": "at_risk"}, active_since=T - HOUR
    )
    TaskStepFactory(playbook=playbook, title_template="Save {{ account.name }}")

    def fire(now):
        return fire_playbook(playbook=playbook, firings=evaluate_trigger(playbook, now=now), now=now)

    assert fire(T).fired == 0  # nothing computed yet
    recompute_insights(now=T)
    assert fire(T).fired == 1
    assert fire(T + HOUR).fired == 0
    recompute_insights(now=T + 2 * HOUR)  # still at risk: same entry
    assert fire(T + 2 * HOUR).fired == 0
    run = PlaybookRun.objects.get(playbook=playbook)
    assert run.account_id == accounts[3].pk
    assert run.context["segment"] == "at_risk"
    assert Task.objects.filter(playbook=playbook).count() == 1


def test_segment_entered_before_the_playbook_existed_does_not_fire(value_settings):
    five_buyers()
    recompute_insights(now=T)
    playbook = PlaybookFactory(
        trigger="segment_entered", trigger_params={"segment": "at_risk"}, active_since=T + HOUR
    )
    assert evaluate_trigger(playbook, now=T + 2 * HOUR) == []


def test_trigger_parameters_are_checked():
    assert trigger_param_errors("segment_entered", {"segment": "vip"}) == [
        "'segment' must be one of " + ", ".join(RfmSegment.values)
    ]
    assert trigger_param_errors("segment_entered", {}) == ["'segment' is required for segment_entered"]
    assert trigger_param_errors("no_survey_in", {"days": 0}) == ["'days' must be at least 1"]
    assert trigger_param_errors("no_survey_in", {"days": 90}) == []


def test_minimum_clv_filter(value_settings):
    accounts = five_buyers()
    recompute_insights(now=T)
    playbook = PlaybookFactory(trigger="renewal_within", trigger_params={"days": 400})
    assert len(evaluate_trigger(playbook, now=T)) == 5
    PlaybookValueFilter.objects.create(playbook=playbook, min_clv=Decimal("3500.00"))
    # CLVs: 500, 200, 30, 800, 60 x 0.7 x 10 → 3500, 1400, 210, 5600, 420
    assert sorted(f.account_id for f in evaluate_trigger(playbook, now=T)) == [accounts[0].pk, accounts[3].pk]


def test_no_survey_in_asks_each_quiet_period_once(db):
    today = T
    answered = AccountFactory(contract_start=dt.date(2025, 1, 1))
    SurveyResponse.objects.create(
        account=answered, kind="nps", score=9, responded_at=today - dt.timedelta(days=30)
    )
    quiet = AccountFactory(contract_start=dt.date(2025, 1, 1))
    SurveyResponse.objects.create(
        account=quiet, kind="nps", score=9, responded_at=today - dt.timedelta(days=100)
    )
    never = AccountFactory(contract_start=dt.date(2026, 1, 1))  # 151 days before T
    young = AccountFactory(contract_start=dt.date(2026, 5, 1))  # 31 days: not due yet
    playbook = PlaybookFactory(trigger="no_survey_in", trigger_params={"days": 90})

    firings = {f.account_id: f for f in evaluate_trigger(playbook, now=today)}

    assert set(firings) == {quiet.pk, never.pk}
    assert firings[quiet.pk].key == "nps-due:90:2026-02-21:1"
    assert firings[quiet.pk].context == {"last_answer": "2026-02-21", "days": 90}
    assert firings[never.pk].key == "nps-due:90:2026-01-01:1"
    assert answered.pk not in firings and young.pk not in firings
    later = {f.account_id: f.key for f in evaluate_trigger(playbook, now=today + dt.timedelta(days=40))}
    assert later[never.pk] == "nps-due:90:2026-01-01:2"  # asked again: still no answer after 180 days


def test_the_default_nps_playbook_creates_the_survey_task(db):
    from playbooks.models import Playbook

    playbook = Playbook.objects.get(name="NPS survey due")
    account = AccountFactory(contract_start=dt.date(2025, 1, 1), owner=None)
    outcome = fire_playbook(playbook=playbook, firings=evaluate_trigger(playbook, now=T), now=T)
    assert outcome.fired >= 1
    task = Task.objects.get(playbook=playbook, account=account)
    assert task.title == f"Send the NPS survey to {account.name}"


def test_metrics_read_clv_and_rfm_score_as_of_t(value_settings, django_assert_max_num_queries):
    accounts = five_buyers()
    assert validate_params("clv", {}) == {}
    assert validate_params("rfm_score", {"days": 3}) == {
        "days": "unknown parameter for rfm_score (allowed: none)"
    }
    cache = MetricCache()
    with django_assert_max_num_queries(7):
        clv = compute("clv", {}, as_of=T, cache=cache)
        rfm = compute("rfm_score", {}, as_of=T, cache=cache)
    assert clv[accounts[3].pk].value == Decimal("5600.00")
    assert rfm[accounts[0].pk].value == Decimal(14)  # 5 + 5 + 4
    # As of a year earlier nobody had bought: no readings.
    assert compute("clv", {}, as_of=T - dt.timedelta(days=400)) == {}
    scoped = compute("rfm_score", {}, as_of=T, accounts=Account.objects.filter(pk=accounts[1].pk))
    assert list(scoped) == [accounts[1].pk]


def test_the_command_runs_the_step(value_settings):
    from io import StringIO

    from django.core.management import call_command

    from accounts.models import StepRun

    five_buyers()
    out = StringIO()
    call_command("recompute_insights", stdout=out)
    assert "5 accounts, 5 with purchases, 5 RFM segment changes." in out.getvalue()
    assert StepRun.objects.get(step="insights.recompute").outcome == "succeeded"


def test_value_and_rfm_reports_from_the_stored_values(value_settings):
    from insights.clv import value_report
    from insights.rfm import rfm_report

    a1, a2, a3, a4, a5 = five_buyers()
    AccountFactory(segment="ent")  # never bought
    recompute_insights(now=T)

    report = value_report(accounts=Account.objects.all())

    smb = next(s for s in report.segments if s.segment == "smb")
    assert (smb.accounts, smb.customers, smb.purchases, smb.value) == (5, 5, 15, Decimal("1590.00"))
    assert smb.average_order_value == Decimal("106.00")  # 1590 / 15
    assert smb.purchases_per_year == Decimal("3.0000")  # 15 purchases / 5 customers
    assert smb.clv == Decimal("2226.00")  # 106 x 3 x 0.7 x 10
    assert smb.total_clv == Decimal("11130.00")  # 3500 + 1400 + 210 + 5600 + 420
    ent = next(s for s in report.segments if s.segment == "ent")
    assert (ent.customers, ent.clv, ent.total_clv) == (0, None, Decimal("0.00"))
    assert report.total_clv == Decimal("11130.00")
    assert [v.account_id for v in report.top_accounts] == [a4.pk, a1.pk, a2.pk, a5.pk, a3.pk]
    assert [v.account_id for v in report.slipping_accounts] == [a4.pk]
    assert report.accounts_by_rfm_segment["lost"] == 1
    assert report.clv_by_rfm_segment["at_risk"] == Decimal("5600.00")

    rfm = rfm_report(accounts=Account.objects.all(), segment="champions")
    assert rfm.grid == [[1 if r == f else 0 for f in range(5)] for r in range(5)]  # R = F for all five
    assert [v.account_id for v in rfm.members] == [a1.pk]
    assert rfm.accounts_by_segment == {
        "champions": 1,
        "loyal": 1,
        "potential_loyalists": 1,
        "new": 0,
        "at_risk": 1,
        "cant_lose": 0,
        "hibernating": 0,
        "lost": 1,
    }


def test_the_incremental_pipeline_leaves_the_insights_to_the_full_runs(value_settings):
    from accounts.models import StepRun

    five_buyers()
    run_pipeline(now=T)
    computed = set(AccountValue.objects.values_list("computed_at", flat=True))

    result = run_pipeline(now=T + HOUR, full=False)

    assert result["insights"] == "full runs only"
    assert set(AccountValue.objects.values_list("computed_at", flat=True)) == computed
    assert StepRun.objects.filter(step="insights.recompute").count() == 1
    assert run_pipeline(now=T + 2 * HOUR)["insights"]["accounts"] == 5
