"""A real Celery worker on the test broker (Redis in `make test`) runs tasks against PostgreSQL."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from accounts.ingestion import ingest_events
from accounts.models import Account, EventDaily
from accounts.tasks import rebuild_event_rollups
from tests.support.processes import process_env

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker(tmp_path):
    """A worker process on the same broker and the same (test) database as this test."""
    env = process_env(tmp_path)
    queue = f"test-{os.getpid()}-{time.monotonic_ns()}"
    log = open(tmp_path / "worker.log", "w+")  # noqa: SIM115
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "solo",
            "-Q",
            queue,
            "-l",
            "INFO",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    yield queue
    process.terminate()
    process.wait(timeout=30)
    log.seek(0)
    print(log.read())
    log.close()


def test_worker_rebuilds_the_rollup_through_the_broker(account_a, worker):
    rows = [
        {"account": "acme", "name": "login", "occurred_at": f"2026-11-{d:02d}T10:00:00Z"}
        for d in (1, 2, 2, 3)
    ]
    ingest_events(raw_rows=rows, accounts=Account.objects.all())
    expected = sorted(EventDaily.objects.values_list("day", "count"))
    EventDaily.objects.all().delete()

    rebuild_event_rollups.apply_async(queue=worker)

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not EventDaily.objects.exists():
        time.sleep(0.3)
    assert sorted(EventDaily.objects.values_list("day", "count")) == expected
