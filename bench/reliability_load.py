"""``make load``: 60 seconds of mixed page and API traffic against gunicorn while the pipeline runs.

Issue 8's bounded load script. On a scratch PostgreSQL database (``LOAD_DATABASE``, dropped first)
it loads the demo data, scores it, starts the production web server (gunicorn with
``config/gunicorn.py``, DEBUG off) and runs the whole pipeline again and again in the background
while ``bench.load`` drives simulated CSMs, managers and integrators (locust, think time
0.5-1.5 s). It prints the table, writes the JSON to ``docs/bench/load-<date>.json`` and the table
into the "Load" section of ``docs/reliability.md``, and fails if any request failed.

Settings from the environment: ``LOAD_USERS`` (50), ``LOAD_SECONDS`` (60), ``LOAD_DATABASE``
(lifeline_load), ``LOAD_SERVER`` (postgres://postgres@127.0.0.1:5432), ``LOAD_WEB_CONCURRENCY`` (4).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
SERVER = os.environ.get("LOAD_SERVER", "postgres://postgres@127.0.0.1:5432")
DATABASE = os.environ.get("LOAD_DATABASE", "lifeline_load")
USERS = int(os.environ.get("LOAD_USERS", "50"))
SECONDS = float(os.environ.get("LOAD_SECONDS", "60"))
WEB_CONCURRENCY = os.environ.get("LOAD_WEB_CONCURRENCY", "4")
REPORT = ROOT / "docs" / "reliability.md"
START, END = "<!-- load:start -->", "<!-- load:end -->"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _environment(port: int) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": f"{SERVER}/{DATABASE}",
        "DEBUG": "false",
        "SECRET_KEY": "load-not-secret",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LIFELINE_HTTPS": "false",  # plain http on loopback: no redirect, no secure-only cookies
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "CELERY_BROKER_URL": "memory://",
        "LOG_LEVEL": "WARNING",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": WEB_CONCURRENCY,
    }


def _manage(env: dict[str, str], *args: str) -> str:
    completed = subprocess.run(  # noqa: S603 - our own argv
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return completed.stdout


def _prepare_database(env: dict[str, str]) -> None:
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
    for step in (
        ("migrate", "--noinput"),
        ("collectstatic", "--noinput", "-v0"),
        ("seed_demo",),
        ("evaluate_journeys",),
        ("recompute_health", "--quiet"),
    ):
        print(f"  manage.py {' '.join(step)}", flush=True)
        _manage(env, *step)


def _start_web(env: dict[str, str], port: int, log) -> subprocess.Popen:
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "--config",
            "config/gunicorn.py",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    for _ in range(120):
        if server.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
                if response.status == 200:
                    return server
        except OSError:
            pass  # still booting
        time.sleep(0.5)
    server.terminate()
    log.flush()
    raise RuntimeError(f"gunicorn did not become ready:\n{Path(log.name).read_text()[-3000:]}")


class PipelineLoop(threading.Thread):
    """Runs ``manage.py run_pipeline`` back to back until stopped, as beat would under load."""

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.env = env
        self.stopping = threading.Event()
        self.durations: list[float] = []
        self.failures: list[str] = []

    def run(self) -> None:
        while not self.stopping.is_set():
            started = time.monotonic()
            completed = subprocess.run(
                [sys.executable, "manage.py", "run_pipeline"],
                cwd=ROOT,
                env=self.env,
                capture_output=True,
                text=True,
            )
            if completed.returncode:
                self.failures.append(completed.stderr[-2000:])
            else:
                self.durations.append(time.monotonic() - started)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=600)


def _load(port: int, json_path: Path) -> dict:
    subprocess.run(  # noqa: S603 - our own argv
        [
            sys.executable,
            "-m",
            "bench.load",
            "--base-url",
            f"http://127.0.0.1:{port}",
            "--scenario",
            "mixed",
            "--users",
            str(USERS),
            "--seconds",
            str(SECONDS),
            "--json",
            str(json_path),
        ],
        cwd=ROOT,
        check=True,
    )
    return json.loads(json_path.read_text())


def _write_report(figures: dict, pipeline: PipelineLoop, today: str) -> None:
    from bench.load_table import format_table

    runs = pipeline.durations
    total = figures["total"]
    text = "\n".join(
        [
            START,
            f"Measured by `make load` on {today} (this 2-core machine; server and load generator share it):",
            f"{figures['users']} simulated users (6 CSMs : 2 managers : 2 integrators, think time 0.5-1.5 s) "
            f"for {figures['seconds']:.0f} s against gunicorn ({WEB_CONCURRENCY} sync workers, DEBUG off) on "
            f"PostgreSQL with the demo data, while the whole pipeline ran {len(runs)} times back to back "
            f"(median {sorted(runs)[len(runs) // 2]:.1f} s a run, {len(pipeline.failures)} failed)."
            if runs
            else "The pipeline did not complete a run during the load.",
            "",
            f"**{total['errors']} errors** in {total['requests']:,} requests; {total['rps']} requests/s; "
            f"p95 {total['p95_ms']:.0f} ms, p99 {total['p99_ms']:.0f} ms.",
            "",
            format_table(figures),
            "",
            f"Raw figures: `docs/bench/load-{today}.json`.",
            END,
        ]
    )
    current = REPORT.read_text() if REPORT.exists() else "# Reliability\n"
    if START in current:
        current = re.sub(f"{re.escape(START)}.*?{re.escape(END)}", lambda _: text, current, flags=re.S)
    elif "## Load" in current:
        current = current.replace("## Load", f"## Load\n\n{text}", 1)
    else:
        current = f"{current.rstrip()}\n\n## Load\n\n{text}\n"
    REPORT.write_text(current)


def main() -> int:
    port = _free_port()
    env = _environment(port)
    today = dt.date.today().isoformat()
    print(f"Preparing {DATABASE} (demo data, scored) …", flush=True)
    _prepare_database(env)
    log_path = Path(tempfile.gettempdir()) / f"lifeline-load-{port}.log"
    with tempfile.TemporaryDirectory() as scratch:
        with open(log_path, "w") as log:
            server = _start_web(env, port, log)
            pipeline = PipelineLoop(env)
            try:
                pipeline.start()
                print(f"Load: {USERS} users for {SECONDS:.0f} s on http://127.0.0.1:{port}/ …", flush=True)
                figures = _load(port, Path(scratch) / "load.json")
            finally:
                pipeline.stop()
                server.terminate()
                server.wait(timeout=60)
        server_errors = [
            line for line in log_path.read_text().splitlines() if "Traceback" in line or "ERROR" in line
        ]
    figures["pipeline_runs"] = [round(seconds, 2) for seconds in pipeline.durations]
    figures["pipeline_failures"] = pipeline.failures
    figures["server_error_lines"] = server_errors[:20]
    print(f"The server's log: {log_path}")
    out = ROOT / "docs" / "bench" / f"load-{today}.json"
    out.write_text(json.dumps(figures, indent=2) + "\n")
    _write_report(figures, pipeline, today)
    print(f"Wrote {out.relative_to(ROOT)} and the Load section of {REPORT.relative_to(ROOT)}.")
    failed = figures["total"]["errors"] or pipeline.failures or server_errors
    if failed:
        print("FAILED: requests or pipeline runs failed under load (see above).", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
