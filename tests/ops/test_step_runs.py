"""Every run of a pipeline step leaves a record: when, how long, what it changed, or why it failed."""

import datetime as dt

import pytest
import time_machine

from accounts.models import StepRun
from accounts.steps import recorded
from health.tasks import recompute_health_task
from insights.tasks import recompute_insights_task
from journeys.tasks import evaluate_journeys_task
from playbooks.pipeline import run_pipeline
from playbooks.tasks import deliver_emails_task, evaluate_playbooks_task
from tests.factories import AccountFactory

STEPS = [
    "journeys.evaluate",
    "insights.recompute",
    "health.recompute",
    "playbooks.evaluate",
    "playbooks.deliver",
]


def test_run_pipeline_records_each_step_with_its_counts(world):
    AccountFactory(owner=world.csm_a, team=world.team_a)

    run_pipeline()

    runs = {run.step: run for run in StepRun.objects.all()}
    assert sorted(runs) == sorted(STEPS)
    for run in runs.values():
        assert run.outcome == StepRun.Outcome.SUCCEEDED
        assert run.finished_at >= run.started_at
        assert run.duration_seconds >= 0
        assert run.error == ""
    assert runs["health.recompute"].counts["accounts"] == 1
    assert set(runs["playbooks.deliver"].counts) == {"sent", "failed", "retried"}
    assert "fired" in runs["playbooks.evaluate"].counts


def test_the_celery_tasks_record_their_step(db):
    evaluate_journeys_task()
    recompute_insights_task()
    recompute_health_task()
    evaluate_playbooks_task()
    deliver_emails_task()

    assert sorted(StepRun.objects.values_list("step", flat=True)) == sorted(STEPS)


def test_the_other_scheduled_jobs_record_their_runs_too(world, settings):
    from accounts.tasks import prune_events_task
    from health.tasks import renewal_forecast_task
    from playbooks.tasks import send_daily_digests_task, send_weekly_digests_task

    settings.LIFELINE_EVENT_RETENTION_DAYS = 400
    AccountFactory(owner=world.csm_a, team=world.team_a)
    send_daily_digests_task()
    send_weekly_digests_task()
    renewal_forecast_task()
    prune_events_task()

    runs = {run.step: run for run in StepRun.objects.all()}
    assert sorted(runs) == [
        "accounts.retention",
        "health.renewal_forecast",
        "playbooks.digests.daily",
        "playbooks.digests.weekly",
    ]
    assert all(run.outcome == StepRun.Outcome.SUCCEEDED for run in runs.values())
    assert runs["accounts.retention"].counts == {"events_deleted": 0, "retention_days": 400}
    assert set(runs["playbooks.digests.daily"].counts) == {"queued"}
    assert "forecasts_kept" in runs["health.renewal_forecast"].counts


def test_a_failing_step_is_recorded_with_its_error_and_still_raises(db):
    with pytest.raises(ZeroDivisionError), recorded("health.recompute"):
        1 / 0  # noqa: B018

    run = StepRun.objects.get()
    assert run.outcome == StepRun.Outcome.FAILED
    assert run.error == "ZeroDivisionError: division by zero"
    assert run.finished_at is not None


def test_a_step_skipped_for_its_lock_is_recorded_as_skipped(db):
    with recorded("journeys.evaluate") as run:
        run.done(None)

    assert StepRun.objects.get().outcome == StepRun.Outcome.SKIPPED


def test_runs_older_than_the_retention_are_pruned_when_the_step_runs_again(db, settings):
    settings.LIFELINE_STEP_RUNS_KEEP_DAYS = 14
    with time_machine.travel(dt.datetime(2026, 11, 1, tzinfo=dt.UTC), tick=False):
        with recorded("playbooks.deliver") as run:
            run.done({"sent": 1})
        with recorded("health.recompute") as run:
            run.done({})

    with (
        time_machine.travel(dt.datetime(2026, 11, 20, tzinfo=dt.UTC), tick=False),
        recorded("playbooks.deliver") as run,
    ):
        run.done({"sent": 0})

    # The old delivery run is gone; another step's old run waits for that step's next run.
    assert sorted(StepRun.objects.values_list("step", "counts")) == [
        ("health.recompute", {}),
        ("playbooks.deliver", {"sent": 0}),
    ]
