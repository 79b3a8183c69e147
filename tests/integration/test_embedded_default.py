"""Smoke test of the embedded default that `make run` uses: no DATABASE_URL, no broker server.

It boots the real processes (migrate, seed_demo, runserver, a Celery worker and beat on the
filesystem broker) in a scratch folder and drives them over HTTP and through the broker.
"""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


@pytest.fixture
def embedded_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    env.update(LIFELINE_VAR_DIR=str(tmp_path / "var"), DEBUG="true", PYTHONUNBUFFERED="1")
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    return env


def manage(env, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def count_rollups(env) -> int:
    code = "from accounts.models import EventDaily; print(EventDaily.objects.count())"
    return int(manage(env, "shell", "--no-imports", "-c", code).split()[-1])


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def http(url: str, data=None, token: str | None = None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read()


def test_embedded_default_runs_web_worker_and_beat(embedded_env, tmp_path):
    env = embedded_env
    assert "Applying accounts.0001_initial" in manage(env, "migrate", "--noinput")
    manage(env, "seed_demo", "--accounts", "12")
    assert (tmp_path / "var" / "lifeline.sqlite3").exists()
    # make run's first scoring, on SQLite: journeys, a backfill of history, the whole pipeline.
    manage(env, "evaluate_journeys")
    manage(env, "recompute_health", "--backfill-days", "14", "--every-days", "7", "--quiet")
    pipeline = json.loads(manage(env, "run_pipeline"))
    assert pipeline["health"]["accounts"] > 0
    assert pipeline["insights"]["accounts"] == 12

    port = free_port()
    logs = {name: open(tmp_path / f"{name}.log", "w+") for name in ("web", "worker", "beat")}  # noqa: SIM115
    commands = {
        "web": [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        "worker": [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "-l", "INFO"],
        "beat": [sys.executable, "-m", "celery", "-A", "config", "beat", "-l", "INFO", "--pidfile="],
    }
    processes = {
        name: subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=logs[name], stderr=subprocess.STDOUT)
        for name, cmd in commands.items()
    }
    try:
        base = f"http://127.0.0.1:{port}"

        def login_page():
            try:
                return http(f"{base}/login/")
            except OSError:
                return None

        status, page = wait_for(login_page, 60, "the login page")
        assert status == 200 and b"Log in to Lifeline" in page

        _, body = http(f"{base}/api/v1/auth/token/", {"username": "admin", "password": "lifeline"})
        token = json.loads(body)["token"]
        _, body = http(f"{base}/api/v1/accounts/?page_size=100", token=token)
        accounts = json.loads(body)
        assert accounts["count"] == 12
        external_id = accounts["results"][0]["external_id"]
        scored = next(a for a in accounts["results"] if a["health_score"] is not None)
        _, body = http(f"{base}/api/v1/accounts/{scored['id']}/health/", token=token)
        components = json.loads(body)["components"]
        assert components and all(isinstance(c, dict) and "measure" in c for c in components)
        status, body = http(f"{base}/api/v1/reports/value/", token=token)
        assert status == 200 and "segments" in json.loads(body)
        batch = [
            {
                "account": external_id,
                "name": "smoke",
                "occurred_at": "2026-01-02T03:04:05Z",
                "idempotency_key": "s1",
            }
        ]
        status, body = http(f"{base}/api/v1/events/", batch, token=token)
        assert (status, json.loads(body)) == (201, {"accepted": 1, "duplicates": 0})

        # A task through the filesystem broker: the worker rebuilds the rollup we remove.
        rollups = count_rollups(env)
        assert rollups > 0
        manage(
            env, "shell", "-c", "from accounts.models import EventDaily; EventDaily.objects.all().delete()"
        )
        assert count_rollups(env) == 0
        manage(
            env,
            "shell",
            "-c",
            "from accounts.tasks import rebuild_event_rollups; rebuild_event_rollups.delay()",
        )
        wait_for(lambda: count_rollups(env) == rollups, 90, "the worker to rebuild the rollup")

        logs["beat"].seek(0)
        assert "beat: Starting" in logs["beat"].read()
    finally:
        for process in processes.values():
            process.send_signal(signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in logs.values():
            log.close()
