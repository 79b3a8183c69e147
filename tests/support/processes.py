"""Real processes for integration tests: Celery workers and beat on the test database and broker."""

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
# "Task playbooks.tasks.deliver_emails_task[<id>] received", then "… succeeded in 0.01s: 3" (or failed …)
TASK_LOG_LINE = re.compile(
    r"Task ([\w.]+)\[([0-9a-f-]+)\] (received|succeeded|failed|raised|retry|ignored)"
    r"|(?:revoked|expired) task:? ([\w.]+)\[([0-9a-f-]+)\]"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    """The URL of the database this test runs on (the test database), for child processes."""
    db = connection.settings_dict
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def process_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Environment for a child process sharing this test's database and broker."""
    return {
        **os.environ,
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "LIFELINE_VAR_DIR": str(tmp_path / "var"),
        "LIFELINE_HTTPS": "false",  # the test talks plain http to 127.0.0.1, even with DEBUG off
        **extra,
    }


class Worker:
    """A Celery worker process on the test broker and database; it can be killed and started again."""

    def __init__(self, *, env: dict[str, str], queue: str, log_dir: Path, name: str = "worker") -> None:
        self.env, self.queue, self.log_dir, self.name = env, queue, log_dir, name
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self.kills = 0
        self._lock = threading.Lock()

    def start(self) -> None:
        self.starts += 1
        log = open(self.log_dir / f"{self.name}-{self.starts}.log", "w")  # noqa: SIM115 - closed by the process
        self.process = subprocess.Popen(
            [
                *[sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo"],
                *[
                    "-Q",
                    self.queue,
                    "-l",
                    "INFO",
                    "--without-heartbeat",
                    "--without-gossip",
                    "--without-mingle",
                ],
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def kill(self) -> None:
        """SIGKILL: no handler, no cleanup, no goodbye to the broker or the database."""
        with self._lock:
            if self.process is None or self.process.poll() is not None:
                return
            self.kills += 1
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def is_dead(self) -> bool:
        with self._lock:
            return self.process is not None and self.process.poll() is not None

    def current_log(self) -> str:
        """What the current process has logged so far."""
        path = self.log_dir / f"{self.name}-{self.starts}.log"
        return path.read_text() if path.exists() else ""

    def is_ready(self) -> bool:
        """The current worker process consumes its queue (celery logs "ready." once it does)."""
        return " ready." in self.current_log()

    def task_in_flight(self) -> str | None:
        """The name of the task the current (solo pool) process is running, from its log; None if idle."""
        started: dict[str, str] = {}
        for match in TASK_LOG_LINE.finditer(self.current_log()):
            name, task_id, what = match.group(1, 2, 3)
            if what == "received":
                started[task_id] = name
            else:
                started.pop(task_id or match.group(5), None)
        return next(reversed(started.values()), None)

    def tasks_done(self) -> int:
        """How many deliver tasks the current process has finished."""
        log = self.log_dir / f"{self.name}-{self.starts}.log"
        return log.read_text().count("deliver_emails_task[") // 2  # "received" and "succeeded" lines

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text()}" for path in sorted(self.log_dir.glob(f"{self.name}-*.log"))
        )


class Beat(Worker):
    """A celery beat process on django-celery-beat's database scheduler.

    ``max_interval``: the longest beat sleeps between looks at the schedule (1 s by default here,
    for quick tests); None runs it as production does (the scheduler's own default, 5 s).
    """

    max_interval: int | None = 1

    def start(self) -> None:
        self.starts += 1
        log = open(self.log_dir / f"{self.name}-{self.starts}.log", "w")  # noqa: SIM115 - closed by the process
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "beat",
                "-l",
                "INFO",
                "--pidfile=",
                *(["--max-interval", str(self.max_interval)] if self.max_interval else []),
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
