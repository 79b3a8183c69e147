"""The whole pipeline on demo data: it acts, emails go out, and a second run makes nothing new."""

import datetime as dt
import threading

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection

from accounts.models import Account
from health.models import HealthScore
from journeys.models import AccountJourney
from playbooks.models import Alert, EmailDelivery, Playbook, PlaybookRun, Task
from playbooks.pipeline import evaluate_playbooks, run_pipeline
from tests.factories import AccountFactory, PlaybookFactory, TaskStepFactory

NOW = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)


def work_counts() -> dict[str, int]:
    return {
        "runs": PlaybookRun.objects.count(),
        "tasks": Task.objects.count(),
        "alerts": Alert.objects.count(),
        "emails": EmailDelivery.objects.count(),
    }


def test_pipeline_on_demo_data_acts_once(db, smtp_server):
    call_command("seed_demo", "--accounts", "40", "--now", NOW.isoformat(), stdout=open("/dev/null", "w"))  # noqa: SIM115

    first = run_pipeline(now=NOW)

    assert AccountJourney.objects.count() > 0
    assert HealthScore.objects.filter(computed_at=NOW).count() == first["health"]["accounts"] > 0
    counts = work_counts()
    assert counts["runs"] > 0 and counts["tasks"] > 0 and counts["alerts"] > 0
    assert first["delivery"]["sent"] == EmailDelivery.objects.filter(status="sent").count() > 0
    assert {m.message_id for m in smtp_server.messages} == {
        f"<lifeline-{key.replace(':', '-')}@lifeline.localhost>"
        for key in EmailDelivery.objects.values_list("key", flat=True)
    }
    # Every automatic task says why it exists.
    assert not Task.objects.filter(playbook__isnull=False, reason={}).exists()

    second = run_pipeline(now=NOW + dt.timedelta(minutes=15))

    assert work_counts() == counts
    assert second["playbooks"]["fired"] == 0
    assert second["delivery"]["sent"] == 0
    assert len(smtp_server.messages) == first["delivery"]["sent"]


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_pipeline_runs_make_nothing_twice(default_configuration, smtp_server):
    call_command("seed_demo", "--accounts", "30", "--now", NOW.isoformat(), stdout=open("/dev/null", "w"))  # noqa: SIM115
    results, errors = [], []

    def run():
        try:
            results.append(run_pipeline(now=NOW))
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    assert errors == []
    counts = work_counts()
    assert counts["tasks"] > 0
    # Running again finds nothing new to do: nothing was done twice or left half done.
    run_pipeline(now=NOW)
    assert work_counts() == counts
    assert all(n == 1 for n in smtp_server.message_id_counts().values())
    open_per_step = Task.objects.filter(status="open", step__isnull=False).values_list(
        "step_id", "account_id"
    )
    assert len(set(open_per_step)) == len(list(open_per_step))


def test_the_incremental_step_looks_at_the_changed_accounts_only(world):
    """Changed accounts fire and clear; an unchanged one keeps its task; time alone waits for the full run."""
    day = NOW.date()
    with time_machine.travel(NOW - dt.timedelta(hours=1), tick=False):
        step = TaskStepFactory(
            playbook=PlaybookFactory(trigger_params={"days": 60}, close_tasks_when_cleared=True),
            title_template="Renewal: {{ account.name }}",
        )
        Playbook.objects.exclude(pk=step.playbook_id).update(active=False)  # the default ones
        holding = AccountFactory(renewal_date=day + dt.timedelta(days=30), owner=world.csm_a)
        cleared = AccountFactory(renewal_date=day + dt.timedelta(days=30), owner=world.csm_a)
        by_time = AccountFactory(renewal_date=day + dt.timedelta(days=61), owner=world.csm_a)
        # Renewing next year: then a change of two accounts is a small one.
        AccountFactory.create_batch(8, renewal_date=day + dt.timedelta(days=365))
    first = evaluate_playbooks(now=NOW)
    assert first.full and first.counts()["tasks_created"] == 2
    later = NOW + dt.timedelta(days=1)  # by_time's renewal is now within 60 days: time alone
    with time_machine.travel(NOW + dt.timedelta(hours=1), tick=False):
        new = AccountFactory(renewal_date=day + dt.timedelta(days=20), owner=world.csm_a)
        Account.objects.filter(pk=cleared.pk).update(
            renewal_date=day + dt.timedelta(days=300), updated_at=NOW + dt.timedelta(hours=1)
        )

    incremental = evaluate_playbooks(now=later, full=False)

    assert (incremental.full, incremental.accounts) == (False, 2)
    assert incremental.counts()["tasks_created"] == 1 and incremental.counts()["tasks_closed"] == 1
    open_tasks = set(Task.objects.filter(step=step, status="open").values_list("account_id", flat=True))
    assert open_tasks == {holding.pk, new.pk}

    full = evaluate_playbooks(now=later)

    assert full.full and full.counts()["tasks_created"] == 1
    open_tasks = set(Task.objects.filter(step=step, status="open").values_list("account_id", flat=True))
    assert open_tasks == {holding.pk, new.pk, by_time.pk}


def test_an_edited_playbook_makes_the_next_incremental_step_look_at_every_account(world):
    with time_machine.travel(NOW - dt.timedelta(hours=1), tick=False):
        playbook = PlaybookFactory(trigger_params={"days": 60})
        TaskStepFactory(playbook=playbook)
        Playbook.objects.exclude(pk=playbook.pk).update(active=False)  # the default ones
        AccountFactory(renewal_date=NOW.date() + dt.timedelta(days=90), owner=world.csm_a)
    evaluate_playbooks(now=NOW)
    assert evaluate_playbooks(now=NOW + dt.timedelta(minutes=15), full=False).full is False
    with time_machine.travel(NOW + dt.timedelta(minutes=20), tick=False):
        playbook.trigger_params = {"days": 120}
        playbook.save()

    result = evaluate_playbooks(now=NOW + dt.timedelta(minutes=30), full=False)

    assert result.full and result.counts()["tasks_created"] == 1


def test_cleared_tasks_close_and_the_quiet_keep_theirs(world):
    """Gone quiet: a task closes when its account logs in again or stops being eligible, and
    only then; the quiet accounts keep theirs, untouched, and fire no second time."""
    from accounts.ingestion import ingest_events

    with time_machine.travel(NOW - dt.timedelta(days=40), tick=False):
        step = TaskStepFactory(
            playbook=PlaybookFactory(
                trigger="inactivity",
                trigger_params={"days": 21, "event": "login"},
                close_tasks_when_cleared=True,
            )
        )
        Playbook.objects.exclude(pk=step.playbook_id).update(active=False)  # the default ones
        quiet, back, churned, busy = (
            AccountFactory(owner=world.csm_a, contract_start=None) for _ in range(4)
        )
    logins = [(account, NOW - dt.timedelta(days=30)) for account in (quiet, back, churned)]
    logins.append((busy, NOW - dt.timedelta(days=2)))
    ingest_events(
        raw_rows=[
            {"account": account.external_id, "name": "login", "occurred_at": at.isoformat()}
            for account, at in logins
        ],
        accounts=Account.objects.all(),
        now=NOW,
    )
    first = evaluate_playbooks(now=NOW)
    assert first.counts()["tasks_created"] == 3
    opened = {task.account_id: task for task in Task.objects.filter(step=step)}
    assert set(opened) == {quiet.pk, back.pk, churned.pk}

    later = NOW + dt.timedelta(days=1)
    ingest_events(
        raw_rows=[
            {
                "account": back.external_id,
                "name": "login",
                "occurred_at": (later - dt.timedelta(hours=20)).isoformat(),
            }
        ],
        accounts=Account.objects.all(),
        now=later,
    )
    Account.objects.filter(pk=churned.pk).update(status=Account.Status.CHURNED)

    second = evaluate_playbooks(now=later)

    assert second.counts() | {"accounts": None} == first.counts() | {
        "accounts": None,
        "fired": 0,
        "tasks_created": 0,
        "tasks_closed": 2,
        "alerts": 0,
    }
    statuses = dict(Task.objects.filter(step=step).values_list("account_id", "status"))
    assert statuses == {quiet.pk: "open", back.pk: "cancelled", churned.pk: "cancelled"}
    kept = Task.objects.get(pk=opened[quiet.pk].pk)
    assert (kept.updated_at, kept.run_id) == (opened[quiet.pk].updated_at, opened[quiet.pk].run_id)
    assert PlaybookRun.objects.filter(playbook=step.playbook).count() == 3
