"""Load against a running Lifeline: simulated CSMs, managers and integrators (locust as a library).

Run it as its own process, ``python -m bench.load --base-url http://127.0.0.1:8000``: locust patches
the standard library with gevent on import, so nothing else (Django, psycopg) may live in this
process. ``python -m bench.reliability_load`` (``make load``) starts the server and the pipeline
and calls this module; the figures come back as JSON (``--json``) and as a printed table.

Scenarios:
- ``mixed``: CSMs browse My book, their accounts and their inboxes, managers read the renewals,
  portfolio and journeys pages, integrators list and read accounts, post small event batches
  (unique idempotency keys) and read the renewals report; every user waits 0.5-1.5 s between
  requests (think time).
- ``pages``: the pages and lists of issue 7 (My book, an account page, the renewals page,
  ``/api/v1/accounts/`` and the renewals report), with the same think time.
- ``closed-loop``: My book only, no think time, to measure requests per second.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import time
import uuid

from gevent import monkey

monkey.patch_all()

from locust import HttpUser, between, constant, events, task  # noqa: E402
from locust.env import Environment  # noqa: E402

from bench.load_table import format_table  # noqa: E402

DEFAULT_LOGINS = {
    "csm": [f"csm{n}" for n in range(1, 7)],
    "manager": ["manager1", "manager2"],
    "integrator": ["admin"],
}
PASSWORD = "lifeline"


class _Logins:
    """Hands out the logins of each role in turn, so the users spread over the teams."""

    def __init__(self, logins: dict[str, list[str]], password: str) -> None:
        self.cycles = {role: itertools.cycle(names) for role, names in logins.items()}
        self.password = password

    def next(self, role: str) -> str:
        return next(self.cycles[role])


LOGINS = _Logins(DEFAULT_LOGINS, PASSWORD)
READY = {"users": 0}  # users that finished logging in: the measurement starts when all have


class _LoggedIn(HttpUser):
    abstract = True
    role = "csm"
    wait_time = between(0.5, 1.5)

    def on_start(self) -> None:
        self.username = LOGINS.next(self.role)
        response = self.client.post(
            "/api/v1/auth/token/",
            json={"username": self.username, "password": LOGINS.password},
            name="POST /api/v1/auth/token/",
        )
        response.raise_for_status()
        self.token = response.json()["token"]
        self.api = {"Authorization": f"Token {self.token}"}
        self._log_in_session()
        listing = self.client.get(
            "/api/v1/accounts/?page_size=500", headers=self.api, name="GET /api/v1/accounts/ (500)"
        )
        accounts = listing.json()["results"]
        self.account_ids = [row["id"] for row in accounts] or [0]
        self.external_ids = [row["external_id"] for row in accounts]
        READY["users"] += 1

    def _log_in_session(self) -> None:
        self.client.get("/login/", name="GET /login/")
        self.client.post(
            "/login/",
            data={
                "username": self.username,
                "password": LOGINS.password,
                "csrfmiddlewaretoken": self.client.cookies.get("csrftoken", ""),
            },
            headers={"Referer": f"{self.host}/login/"},
            name="POST /login/",
            allow_redirects=False,
        )

    def page(self, path: str, name: str) -> None:
        with self.client.get(path, name=name, allow_redirects=False, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code} for {path}")


class Csm(_LoggedIn):
    role = "csm"
    weight = 6

    @task(4)
    def my_book(self) -> None:
        self.page("/", "page My book /")

    @task(4)
    def account_page(self) -> None:
        self.page(f"/accounts/{random.choice(self.account_ids)}/", "page /accounts/{id}/")

    @task(1)
    def tasks_inbox(self) -> None:
        self.page("/tasks/", "page /tasks/")

    @task(1)
    def alerts_inbox(self) -> None:
        self.page("/alerts/", "page /alerts/")


class Manager(_LoggedIn):
    role = "manager"
    weight = 2

    @task(3)
    def renewals(self) -> None:
        self.page("/renewals/", "page /renewals/")

    @task(2)
    def portfolio(self) -> None:
        self.page("/portfolio/", "page /portfolio/")

    @task(1)
    def journeys(self) -> None:
        self.page("/journeys/", "page /journeys/")

    @task(2)
    def my_book(self) -> None:
        self.page("/", "page My book /")


class Integrator(_LoggedIn):
    role = "integrator"
    weight = 2

    @task(3)
    def list_accounts(self) -> None:
        self.client.get("/api/v1/accounts/?page_size=100", headers=self.api, name="GET /api/v1/accounts/")

    @task(3)
    def read_account(self) -> None:
        self.client.get(
            f"/api/v1/accounts/{random.choice(self.account_ids)}/",
            headers=self.api,
            name="GET /api/v1/accounts/{id}/",
        )

    @task(2)
    def post_events(self) -> None:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        batch = [
            {
                "account": random.choice(self.external_ids),
                "name": "login",
                "occurred_at": now,
                "idempotency_key": f"load-{uuid.uuid4()}",
            }
            for _ in range(20)
        ]
        self.client.post(
            "/api/v1/events/", json=batch, headers=self.api, name="POST /api/v1/events/ (20 rows)"
        )

    @task(1)
    def renewals_report(self) -> None:
        self.client.get(
            "/api/v1/reports/renewals/?days=90", headers=self.api, name="GET /api/v1/reports/renewals/"
        )


class PagesCsm(_LoggedIn):
    """Issue 7's pages for a CSM: My book, an account page, the accounts list."""

    role = "csm"
    weight = 3

    @task(2)
    def my_book(self) -> None:
        self.page("/", "page My book /")

    @task(2)
    def account_page(self) -> None:
        self.page(f"/accounts/{random.choice(self.account_ids)}/", "page /accounts/{id}/")

    @task(2)
    def list_accounts(self) -> None:
        self.client.get("/api/v1/accounts/", headers=self.api, name="GET /api/v1/accounts/")


class PagesManager(_LoggedIn):
    """Issue 7's pages for a manager: the renewals page and the renewals report."""

    role = "manager"
    weight = 1

    @task
    def renewals(self) -> None:
        self.page("/renewals/", "page /renewals/")

    @task
    def renewals_report(self) -> None:
        self.client.get("/api/v1/reports/renewals/", headers=self.api, name="GET /api/v1/reports/renewals/")


class ClosedLoopBook(_LoggedIn):
    """My book as fast as the server answers: requests per second, not latency."""

    role = "csm"
    wait_time = constant(0)

    @task
    def my_book(self) -> None:
        self.page("/", "page My book /")


SCENARIOS = {
    "mixed": [Csm, Manager, Integrator],
    "pages": [PagesCsm, PagesManager],
    "closed-loop": [ClosedLoopBook],
}
SETUP_NAMES = ("POST /api/v1/auth/token/", "GET /login/", "POST /login/", "GET /api/v1/accounts/ (500)")


def run_load(base_url: str, *, scenario: str, users: int, seconds: float, spawn_rate: float) -> dict:
    """Run ``users`` simulated users for ``seconds`` and return the figures per request name."""
    environment = Environment(user_classes=SCENARIOS[scenario], host=base_url, events=events)
    runner = environment.create_local_runner()
    runner.start(users, spawn_rate=spawn_rate)
    deadline = time.monotonic() + 300
    while READY["users"] < users and time.monotonic() < deadline:
        time.sleep(0.5)  # logins hash passwords (slow on purpose): measure once everyone is in
    environment.stats.reset_all()  # measure the steady state, not the logins of the ramp
    started = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    runner.quit()
    return _figures(environment, elapsed=elapsed, scenario=scenario, users=users)


def _figures(environment: Environment, *, elapsed: float, scenario: str, users: int) -> dict:
    rows = []
    for entry in sorted(environment.stats.entries.values(), key=lambda entry: entry.name):
        if entry.name in SETUP_NAMES or not entry.num_requests:
            continue
        rows.append(_row(entry.name, entry, elapsed))
    total = environment.stats.total
    failures = [
        {"name": error.name, "error": str(error.error), "occurrences": error.occurrences}
        for error in environment.stats.errors.values()
    ]
    return {
        "scenario": scenario,
        "users": users,
        "seconds": round(elapsed, 1),
        "requests": rows,
        "total": _row("all requests", total, elapsed),
        "failures": failures,
    }


def _row(name: str, entry, elapsed: float) -> dict:
    return {
        "name": name,
        "requests": entry.num_requests,
        "errors": entry.num_failures,
        "rps": round(entry.num_requests / elapsed, 1) if elapsed else 0.0,
        "p50_ms": entry.get_response_time_percentile(0.50),
        "p95_ms": entry.get_response_time_percentile(0.95),
        "p99_ms": entry.get_response_time_percentile(0.99),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="mixed")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--spawn-rate", type=float, default=10)
    parser.add_argument("--login", action="append", default=[], metavar="ROLE=USER[,USER...]")
    parser.add_argument("--password", default=PASSWORD)
    parser.add_argument("--json", help="write the figures to this file")
    options = parser.parse_args(argv)
    global LOGINS
    logins = dict(DEFAULT_LOGINS)
    for item in options.login:
        role, _, names = item.partition("=")
        logins[role] = names.split(",")
    LOGINS = _Logins(logins, options.password)
    figures = run_load(
        options.base_url.rstrip("/"),
        scenario=options.scenario,
        users=options.users,
        seconds=options.seconds,
        spawn_rate=options.spawn_rate,
    )
    print(format_table(figures))
    for failure in figures["failures"]:
        print(f"failure: {failure['name']}: {failure['error']} x{failure['occurrences']}", file=sys.stderr)
    if options.json:
        with open(options.json, "w") as handle:
            json.dump(figures, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
