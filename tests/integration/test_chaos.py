"""A worker SIGKILLed at random points of the scheduled pipeline, 20 times, with two beats running.

Every alert due is made once and its email delivered; no task, alert, run or outbox row twice;
an email arrives twice only when its sender died between the server's 250 and recording it
(same Message-ID), at most once per kill during delivery. The driver is tests/support/chaos.py;
``make chaos`` runs this test with 500 cycles (LIFELINE_CHAOS_CYCLES) and writes the figures into
docs/reliability.md (LIFELINE_CHAOS_REPORT).
"""

import datetime as dt
import os
import time
from collections.abc import Iterator

import pytest
from django.utils import timezone

from accounts.models import Account
from playbooks.models import Playbook
from tests.factories import AccountFactory, TeamFactory, UserFactory
from tests.support.chaos import LEASE_SECONDS, ChaosRun, write_figures
from tests.support.processes import ROOT, Beat, Worker, process_env

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CYCLES = int(os.environ.get("LIFELINE_CHAOS_CYCLES", "20"))
SEED = int(os.environ.get("LIFELINE_CHAOS_SEED", "8"))
REPORT = os.environ.get("LIFELINE_CHAOS_REPORT", "")


@pytest.fixture
def processes(default_configuration, sink, tmp_path) -> Iterator[tuple[Worker, list[Beat]]]:
    queue = f"chaos-{os.getpid()}-{time.monotonic_ns()}"  # its own queue on the shared broker
    env = process_env(
        tmp_path,
        CELERY_TASK_DEFAULT_QUEUE=queue,
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST=sink.host,
        EMAIL_PORT=str(sink.port),
        EMAIL_HOST_USER="",
        EMAIL_HOST_PASSWORD="",
        EMAIL_USE_TLS="false",
        LIFELINE_EMAIL_LEASE_SECONDS=str(LEASE_SECONDS),
    )
    worker = Worker(env=env, queue=queue, log_dir=tmp_path, name="worker")
    beats = [Beat(env=env, queue="", log_dir=tmp_path, name=name) for name in ("beat-a", "beat-b")]
    yield worker, beats
    for process in (worker, *beats):
        process.stop()
    for process in (worker, *beats):
        print(process.logs()[-3000:])


def test_worker_killed_at_random_points_of_the_pipeline_loses_and_duplicates_nothing(sink, processes):
    worker, beats = processes
    manager = UserFactory(username="mia", email="mia@example.com", role="manager")
    csm = UserFactory(username="carl", email="carl@example.com", role="csm")
    team = TeamFactory(name="North", manager=manager)
    team.members.add(csm)
    Playbook.objects.update(active_since=timezone.now() - dt.timedelta(days=1))
    today = timezone.localdate()

    def renewing_account(number: int) -> Account:
        """An account the renewal playbooks fire on: tasks for the CSM, alerts and emails."""
        return AccountFactory(
            name=f"Chaos {number:04d}",
            owner=csm,
            team=team,
            contract_start=today - dt.timedelta(days=400),
            renewal_date=today + dt.timedelta(days=30),
        )

    chaos = ChaosRun(
        worker=worker, beats=beats, sink=sink, make_account=renewing_account, cycles=CYCLES, seed=SEED
    )
    figures = chaos.run()
    print(figures.markdown_table())

    assert figures.kills == CYCLES
    assert figures.accounts == CYCLES
    assert figures.alerts_created == figures.alerts_due > 0
    assert figures.emails_received == figures.emails_sent == figures.emails_due == figures.alerts_due
    assert (figures.duplicate_tasks, figures.duplicate_alerts, figures.duplicate_runs) == (0, 0, 0)
    assert figures.duplicate_outbox_rows == 0
    assert figures.resent_messages >= figures.forced_in_window
    assert figures.pipelines_sent_by_beats > CYCLES  # both beats kept sending it
    if REPORT:
        write_figures(figures, ROOT / REPORT)
