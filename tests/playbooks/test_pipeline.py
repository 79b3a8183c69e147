"""The whole pipeline on demo data: it acts, emails go out, and a second run makes nothing new."""

import datetime as dt
import threading

import pytest
from django.core.management import call_command
from django.db import connection

from health.models import HealthScore
from journeys.models import AccountJourney
from playbooks.models import Alert, EmailDelivery, PlaybookRun, Task
from playbooks.pipeline import run_pipeline

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
