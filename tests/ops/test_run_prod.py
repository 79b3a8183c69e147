"""`make run-prod`'s processes — the Procfile's gunicorn web, worker and one beat, DEBUG off, on
PostgreSQL and Redis — serve the login page, say they are ready, and run the pipeline."""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import redis
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from accounts.models import StepRun
from tests.factories import AccountFactory
from tests.support.processes import ROOT, free_port, process_env

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

BROKER_URL = "redis://127.0.0.1:6379/13"
STEPS = {"journeys.evaluate", "health.recompute", "playbooks.evaluate", "playbooks.deliver"}


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_procfile_processes_serve_the_login_page_and_run_the_pipeline(default_configuration, tmp_path: Path):
    redis.Redis.from_url(BROKER_URL).flushdb()
    port = free_port()
    env = process_env(
        tmp_path,
        CELERY_BROKER_URL=BROKER_URL,
        DEBUG="false",
        SECRET_KEY="run-prod-test-only",
        HOST="127.0.0.1",
        PORT=str(port),
        WEB_CONCURRENCY="2",
        WORKER_CONCURRENCY="1",
        EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
        LOG_FORMAT="json",
        PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    )
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )
    AccountFactory()
    every_2s, _ = IntervalSchedule.objects.get_or_create(every=2, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(
        name="pipeline (test)", task="playbooks.tasks.run_pipeline_task", interval=every_2s, expire_seconds=30
    )
    log = open(tmp_path / "honcho.log", "w")  # noqa: SIM115 - closed below
    honcho = subprocess.Popen(
        [sys.executable, "-m", "honcho", "-f", "Procfile", "start", "web", "worker", "beat"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        recorded: set[str] = set()
        login = ready = None
        while time.monotonic() < deadline:
            time.sleep(1)
            if login is None or login[0] != 200:
                try:
                    login, ready = get(f"{base}/login/"), get(f"{base}/readyz")
                except OSError:
                    continue
            recorded = set(StepRun.objects.filter(outcome="succeeded").values_list("step", flat=True))
            if recorded >= STEPS and login[0] == 200:
                break

        assert login is not None and login[0] == 200 and "password" in login[1].lower()
        assert ready is not None and ready[0] == 200, ready
        assert recorded >= STEPS
        status, static = get(f"{base}/static/css/base.css")
        assert status == 200 and static  # whitenoise, with DEBUG off
    finally:
        os.killpg(honcho.pid, signal.SIGTERM)
        try:
            honcho.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(honcho.pid, signal.SIGKILL)
            honcho.wait()
        log.close()
        print((tmp_path / "honcho.log").read_text()[-4000:])
