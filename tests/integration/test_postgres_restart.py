"""PostgreSQL goes down and comes back while a client sends event batches to gunicorn.

On a private cluster (tests/support/private_postgres.py), never the shared one. While the
database is down the API answers 503 with Retry-After (JSON, not a 500 page); the client resends
the same batch with the same idempotency keys until it gets 201. After a fast restart and a crash
(immediate) restart, the app's pooled connections recover, and the database holds exactly one copy
of every event, with daily rollups equal to a GROUP BY over the events.
"""

import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator

import psycopg
import pytest

from tests.support.private_postgres import PrivatePostgres
from tests.support.processes import ROOT, free_port

pytestmark = [pytest.mark.integration]

BATCHES = 60
EVENTS_PER_BATCH = 50
ACCOUNTS = ("acct-0", "acct-1", "acct-2")
SETUP = """
from django.contrib.auth import get_user_model
from access.tokens import issue_token
from accounts.models import Account
user = get_user_model().objects.create_superuser("integrator", "integrator@example.com", "x")
for external_id in {accounts!r}:
    Account.objects.create(external_id=external_id, name=external_id)
print(issue_token(user=user)[1])
"""


@pytest.fixture
def cluster() -> Iterator[PrivatePostgres]:
    cluster = PrivatePostgres()
    cluster.init()
    cluster.start()
    cluster.create_database("lifeline")
    yield cluster
    print(cluster.log()[-3000:])
    cluster.destroy()


@pytest.fixture
def server(cluster, tmp_path) -> Iterator[tuple[str, str]]:
    """gunicorn (2 sync workers, pooled connections with health checks) on the private cluster."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": cluster.url("lifeline"),
        "LIFELINE_VAR_DIR": str(tmp_path / "var"),
        "DEBUG": "false",
        "LIFELINE_HTTPS": "false",  # plain http to 127.0.0.1
        "SECRET_KEY": "postgres-restart-test-only",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
    }
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True, timeout=300)
    setup = subprocess.run(
        [*manage, "shell", "-c", SETUP.format(accounts=ACCOUNTS)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    token = setup.stdout.strip().splitlines()[-1]
    log = open(tmp_path / "gunicorn.log", "w")  # noqa: SIM115 - closed below
    gunicorn = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "-c", "config/gunicorn.py"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        assert gunicorn.poll() is None, (tmp_path / "gunicorn.log").read_text()
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=5):
                break
        except OSError:
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.3)
    yield base, token
    gunicorn.terminate()
    gunicorn.wait(timeout=30)
    log.close()
    print((tmp_path / "gunicorn.log").read_text()[-3000:])


def batch(number: int) -> bytes:
    start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    return json.dumps(
        [
            {
                "account": ACCOUNTS[(number + i) % len(ACCOUNTS)],
                "name": "login" if i % 3 else "export",
                "occurred_at": (start + dt.timedelta(hours=number * 7 + i)).isoformat(),
                "value": f"{i % 5}.25",
                "idempotency_key": f"batch-{number}-event-{i}",
            }
            for i in range(EVENTS_PER_BATCH)
        ]
    ).encode()


class Client:
    """Sends the batches in order; resends one until it gets 201, as an integrator must."""

    def __init__(self, base: str, token: str) -> None:
        self.base, self.token = base, token
        self.accepted = 0  # batches answered 201
        self.answers: Counter[int] = Counter()
        self.unavailable: list[tuple[dict, str | None]] = []  # 503 bodies and Retry-After headers
        self.errors: list[str] = []

    def post(self, body: bytes) -> int:
        request = urllib.request.Request(
            f"{self.base}/api/v1/events/",
            data=body,
            method="POST",
            headers={"Authorization": f"Token {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            if exc.code == 503:
                self.unavailable.append((json.loads(exc.read()), exc.headers.get("Retry-After")))
            else:
                self.errors.append(f"{exc.code}: {exc.read()[:300]!r}")
            return exc.code

    def send_all(self, batches: range) -> None:
        for number in batches:
            body = batch(number)
            deadline = time.monotonic() + 60
            while (status := self.post(body)) != 201:
                self.answers[status] += 1
                if time.monotonic() > deadline:
                    self.errors.append(f"batch {number} not accepted in 60 s")
                    return
                time.sleep(0.2)  # a real client honours Retry-After; the test has no time to
            self.answers[201] += 1
            self.accepted += 1


def wait_for(condition, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_postgres_restarts_during_ingestion_leave_exactly_one_copy_of_every_event(cluster, server):
    client = Client(*server)
    sender = threading.Thread(target=client.send_all, args=(range(BATCHES),), daemon=True)
    sender.start()

    # Down mid-stream (clean shutdown, connections cut): the client gets 503s meanwhile.
    wait_for(lambda: client.accepted >= 10, "the first batches")
    cluster.stop("fast")
    wait_for(lambda: len(client.unavailable) >= 2, "the client to see the outage")
    cluster.start()
    # Then a crash: the server killed without a checkpoint, restarted at once.
    wait_for(lambda: client.accepted >= 30, "batches after the first restart")
    cluster.stop("immediate")
    wait_for(lambda: len(client.unavailable) >= 4, "the client to see the crash")
    cluster.start()
    sender.join(timeout=120)
    assert not sender.is_alive(), "the client did not finish"

    assert client.errors == []
    assert client.accepted == BATCHES
    assert set(client.answers) == {201, 503}, client.answers
    body, retry_after = client.unavailable[0]
    assert "database is unavailable" in body["detail"] and retry_after == "5"
    # A resend of batches already stored (the client could not know) stores nothing again.
    for number in (0, 10, 59):
        assert client.post(batch(number)) == 201

    with psycopg.connect(cluster.url("lifeline")) as db:
        total, distinct = db.execute(
            "SELECT count(*), count(DISTINCT (account_id, idempotency_key)) FROM accounts_event"
        ).fetchone()
        assert total == distinct == BATCHES * EVENTS_PER_BATCH
        keys = {row[0] for row in db.execute("SELECT idempotency_key FROM accounts_event")}
        assert keys == {f"batch-{n}-event-{i}" for n in range(BATCHES) for i in range(EVENTS_PER_BATCH)}
        mismatched = db.execute(
            """
            SELECT count(*) FROM accounts_eventdaily d
            FULL JOIN (
                SELECT account_id, name, (occurred_at AT TIME ZONE 'UTC')::date AS day,
                       count(*) AS n, coalesce(sum(value), 0) AS total
                FROM accounts_event GROUP BY 1, 2, 3
            ) e USING (account_id, name, day)
            WHERE d.count IS DISTINCT FROM e.n OR d.value_sum IS DISTINCT FROM e.total
            """
        ).fetchone()[0]
        assert mismatched == 0
        rolled_up = db.execute("SELECT sum(count) FROM accounts_eventdaily").fetchone()[0]
        assert rolled_up == BATCHES * EVENTS_PER_BATCH
    print(f"{BATCHES} batches, answers {dict(client.answers)}")
