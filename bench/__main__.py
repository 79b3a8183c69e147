"""``python -m bench`` (``make bench``): Lifeline's figures, each beside its floor measured in the same run.

Creates a scratch database, fills it with ``generate_data``, then measures ingestion (API over
HTTP and CSV vs COPY), the health recompute (vs one bare GROUP BY), the pipeline (full and
incremental) and page/API latencies. Prints one table and writes it to ``docs/bench/<date>.json``.

Environment: ``BENCH_SIZE`` (S or L, default S), ``BENCH_ACCOUNTS`` (overrides the size's
accounts), ``BENCH_SERVER`` (``postgres://user@host:port``, default the local one),
``BENCH_DATABASE`` (scratch database name, default ``lifeline_bench``; dropped and recreated).
"""

import csv
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
SERVER = os.environ.get("BENCH_SERVER", "postgres://postgres@127.0.0.1:5432").rstrip("/")
DATABASE = os.environ.get("BENCH_DATABASE", "lifeline_bench")
PORT = int(os.environ.get("BENCH_PORT", "8765"))
INGEST_BATCHES = int(os.environ.get("BENCH_INGEST_BATCHES", "10"))
BATCH = 10_000
REQUESTS = 50


def _environment() -> dict[str, str]:
    return {
        "DATABASE_URL": f"{SERVER}/{DATABASE}",
        "DEBUG": "false",
        "LIFELINE_HTTPS": "false",  # plain http on loopback: no redirect to https
        "SECRET_KEY": "bench-not-secret",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
        "CELERY_BROKER_URL": "memory://",
        "LOG_LEVEL": "WARNING",
    }


def _create_scratch_database() -> None:
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')


class Results:
    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, name: str, value: float, unit: str, *, floor=None, floor_name="", target="", note=""):
        ratio = None
        if floor:
            ratio = value / floor
        row = {
            "figure": name,
            "value": round(value, 4),
            "unit": unit,
            "floor": round(floor, 4) if floor is not None else None,
            "floor_is": floor_name,
            "ratio": round(ratio, 3) if ratio is not None else None,
            "target": target,
            "note": note,
        }
        self.rows.append(row)
        print(
            f"  {name}: {value:,.3f} {unit}" + (f" (floor {floor:,.3f}, ratio {ratio:.2f})" if floor else "")
        )


def _timed(function, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - started, result


def main() -> int:
    os.environ.update(_environment())
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    _create_scratch_database()

    import django

    django.setup()
    from django.core.management import call_command

    from accounts.generation import SIZES, generate_data, size_for

    size = SIZES[os.environ.get("BENCH_SIZE", "S").upper()]
    if os.environ.get("BENCH_ACCOUNTS"):
        size = size_for(
            accounts=int(os.environ["BENCH_ACCOUNTS"]),
            days=size.days,
            events_per_account_day=size.events_per_account_day,
        )
    results = Results()
    print(f"Scratch database {DATABASE}: migrating, generating {size.accounts:,} accounts…")
    call_command("migrate", verbosity=0)
    call_command("collectstatic", "--noinput", verbosity=0)  # pages render with the manifest (DEBUG off)
    # Two hours behind the wall clock: rows stamped with the real time (a stage change's
    # recorded_at, a milestone's created_at) are then "later" than every run of the bench, as
    # they would be in production, where runs and stamps share one clock.
    now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=2)
    seconds, summary = _timed(generate_data, size=size, seed=1, now=now)
    _sql("VACUUM ANALYZE")
    results.add(
        "generate_data events/s", summary.events / seconds, "events/s", note=f"{summary.events:,} events"
    )

    _bench_sizes(results)
    _bench_recompute(results, now=now)
    _bench_recompute_memory(results, now=now)
    _bench_pipeline(results, now=now)
    _bench_queries(results)
    server = _start_gunicorn()
    try:
        _bench_ingestion(results, now=now)
        _bench_latencies(results)
        _bench_load(results)
    finally:
        server.terminate()
        server.wait(timeout=30)

    report = {
        "date": dt.date.today().isoformat(),
        "size": {"accounts": summary.accounts, "events": summary.events, "days": size.days},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "figures": results.rows,
    }
    _print_table(report)
    out = ROOT / "docs" / "bench" / f"{report['date']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"Written to {out.relative_to(ROOT)}")
    return 0


def _sql(statement: str, params=None) -> list[tuple]:
    with psycopg.connect(f"{SERVER}/{DATABASE}", autocommit=True) as conn:
        cursor = conn.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


# --- (b) recompute vs one bare GROUP BY -------------------------------------------------------------

BARE_AGGREGATES = """
WITH usage AS (
    SELECT account_id,
           COUNT(DISTINCT day) FILTER (WHERE name = 'login' AND day >= %(d30)s) AS login_days,
           SUM(count) FILTER (WHERE name = 'report_viewed' AND day >= %(d30)s) AS reports,
           SUM(count) FILTER (WHERE name = 'login' AND day >= %(d30)s) AS logins_now,
           SUM(count) FILTER (WHERE name = 'login' AND day >= %(d60)s AND day < %(d30)s) AS logins_before
      FROM accounts_eventdaily WHERE day >= %(d60)s GROUP BY account_id
), raw AS (
    SELECT account_id, MAX(occurred_at) FILTER (WHERE name = 'login') AS last_login,
           COUNT(DISTINCT contact_id) FILTER (WHERE occurred_at >= %(t30)s) AS contacts
      FROM accounts_event WHERE occurred_at <= %(now)s GROUP BY account_id
), tickets AS (
    SELECT account_id, COUNT(*) AS open, COUNT(*) FILTER (WHERE priority IN ('high', 'urgent')) AS urgent
      FROM accounts_ticket WHERE closed_at IS NULL GROUP BY account_id
), surveys AS (
    SELECT account_id, (ARRAY_AGG(score ORDER BY responded_at DESC)) [1] AS nps
      FROM accounts_surveyresponse WHERE kind = 'nps' GROUP BY account_id
), touch AS (
    SELECT account_id, MAX(occurred_at) AS last_touch FROM accounts_touchpoint GROUP BY account_id
)
SELECT (SELECT COUNT(*) FROM usage), (SELECT COUNT(*) FROM raw), (SELECT COUNT(*) FROM tickets),
       (SELECT COUNT(*) FROM surveys), (SELECT COUNT(*) FROM touch)
"""


def _bench_recompute(results: Results, *, now: dt.datetime) -> None:
    from health.scoring import recompute_health

    params = {
        "now": now,
        "t30": now - dt.timedelta(days=30),
        "d30": (now - dt.timedelta(days=30)).date(),
        "d60": (now - dt.timedelta(days=60)).date(),
    }
    floor, _ = _timed(_sql, BARE_AGGREGATES, params)
    floor = min(floor, _timed(_sql, BARE_AGGREGATES, params)[0])
    seconds, changes = _timed(recompute_health, now=now - dt.timedelta(hours=1))
    results.add(
        "recompute_health (full)",
        seconds,
        "s",
        floor=floor,
        floor_name="bare SELECT … GROUP BY account_id of the same aggregates (best of 2)",
        target="≤ 2.0x floor; S ≤ 10 s",
        note=f"{changes.accounts:,} accounts scored",
    )


def _bench_recompute_memory(results: Results, *, now: dt.datetime) -> None:
    """Peak RSS of a fresh process that runs one full recompute (a worker's memory), as it reports it."""
    code = (
        "import datetime as dt, resource, django; django.setup();"
        "from health.scoring import recompute_health;"
        f"recompute_health(now=dt.datetime.fromisoformat({(now - dt.timedelta(minutes=30)).isoformat()!r}));"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    child = subprocess.run(  # noqa: S603 - our own argv
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=os.environ.copy(),
        check=True,
        capture_output=True,
        text=True,
    )
    peak_kb = int(child.stdout.strip().splitlines()[-1])
    results.add(
        "recompute worker peak memory",
        peak_kb / 1024,
        "MB",
        target="≤ 300 MB at S and L",
        note="max RSS of a fresh process running recompute_health (Django loaded)",
    )


# --- (e) table sizes -------------------------------------------------------------------------------


def _bench_sizes(results: Results) -> None:
    ((heap, total, indexes),) = _sql(
        "SELECT pg_relation_size('accounts_event'), pg_total_relation_size('accounts_event'),"
        " pg_indexes_size('accounts_event')"
    )
    mb = 1024 * 1024
    results.add(
        "events table with its indexes",
        total / mb,
        "MB",
        floor=heap / mb,
        floor_name="the bare heap (pg_relation_size)",
        target="≤ 2.2x heap",
        note=f"indexes {indexes / mb:,.0f} MB",
    )


# --- (c) pipeline full and incremental --------------------------------------------------------------


def _bench_pipeline(results: Results, *, now: dt.datetime) -> None:
    from accounts.ingestion import ingest_events
    from accounts.models import Account
    from playbooks.pipeline import run_pipeline

    # Ten minutes after the data was generated (stamped ``now``), as a scheduled run would be.
    first = now + dt.timedelta(minutes=10)
    seconds, _ = _timed(run_pipeline, now=first)
    results.add("pipeline (full, first run)", seconds, "s", target="L ≤ 180 s")
    # The next scheduled run: the first one placed every account in a stage at ``first``, and a
    # run looks again at what was recorded in the minutes before the previous one (a margin
    # for late commits), so the run after a placement rescores everyone. Measured, then the
    # steady state.
    second = first + dt.timedelta(minutes=15)
    seconds, _ = _timed(run_pipeline, now=second, full=False)
    results.add("pipeline (second run, after the placement)", seconds, "s")
    # 1% of the accounts send new events, then the next run, rescoring only what changed.
    later = second + dt.timedelta(minutes=15)
    ids = list(Account.objects.filter(status="active").order_by("?").values_list("external_id", flat=True))
    ids = ids[: max(1, len(ids) // 100)]
    rows = [
        {
            "account": external_id,
            "name": "login",
            "occurred_at": (later - dt.timedelta(minutes=5)).isoformat(),
        }
        for external_id in ids
    ]
    for start in range(0, len(rows), BATCH):
        ingest_events(raw_rows=rows[start : start + BATCH], accounts=Account.objects.all(), now=later)
    seconds, outcome = _timed(run_pipeline, now=later, full=False)
    results.add(
        "pipeline (incremental, 1% accounts with new data)",
        seconds,
        "s",
        target="≤ 10 s",
        note=f"{outcome['health']['accounts']:,} accounts rescored",
    )


# --- (a) ingestion -------------------------------------------------------------------------------


def _start_gunicorn() -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi",
        "-w",
        "2",
        "-b",
        f"127.0.0.1:{PORT}",
        "-t",
        "300",
    ]
    server = subprocess.Popen(command, cwd=ROOT, env=os.environ.copy())  # noqa: S603 - our own argv
    import requests

    for _ in range(120):
        if server.poll() is not None:
            break
        try:
            if requests.get(f"http://127.0.0.1:{PORT}/healthz", timeout=5).status_code == 200:
                return server
        except requests.RequestException:
            pass  # still booting
        time.sleep(0.5)
    server.terminate()
    raise RuntimeError("gunicorn did not start")


def _bench_user():
    """A CSM of the generated data, with an API token."""
    from django.contrib.auth import get_user_model

    from access.tokens import issue_token

    user = get_user_model().objects.filter(username__startswith="gen-csm-").order_by("id").first()
    user.is_superuser = True  # ingestion and lists over every account
    user.save(update_fields=["is_superuser"])
    return user, issue_token(user=user)[1]


def _ingest_rows(now: dt.datetime) -> list[dict]:
    from accounts.models import Account

    accounts = list(Account.objects.filter(status="active").values_list("external_id", flat=True)[:5_000])
    run = uuid.uuid4().hex[:8]
    base = now - dt.timedelta(days=2)
    return [
        {
            "account": accounts[i % len(accounts)],
            "name": ("login", "report_viewed", "export")[i % 3],
            "occurred_at": (base + dt.timedelta(seconds=i)).isoformat(),
            "value": None,
            "idempotency_key": f"bench-{run}-{i}",
        }
        for i in range(INGEST_BATCHES * BATCH)
    ]


def _copy_floor(rows: list[dict]) -> float:
    """COPY of the same rows into the same (indexed) events table, rolled back."""
    ids = dict(_sql("SELECT external_id, id FROM accounts_account"))
    with psycopg.connect(f"{SERVER}/{DATABASE}") as conn:
        started = time.perf_counter()
        columns = "account_id, name, occurred_at, value, properties, idempotency_key, received_at"
        with conn.cursor() as cursor, cursor.copy(f"COPY accounts_event ({columns}) FROM STDIN") as copy:
            received = dt.datetime.now(dt.UTC)
            for row in rows:
                copy.write_row(
                    (
                        ids[row["account"]],
                        row["name"],
                        row["occurred_at"],
                        None,
                        "{}",
                        row["idempotency_key"],
                        received,
                    )
                )
        elapsed = time.perf_counter() - started
        conn.rollback()
    return elapsed


def _csv_import(rows: list[dict]) -> float:
    """``import_csv`` of the same rows, rolled back."""
    from django.db import transaction

    from accounts.csv_import import import_csv

    with tempfile.NamedTemporaryFile("w", suffix=".csv", newline="", delete=False) as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["account", "name", "occurred_at", "value", "contact", "properties", "idempotency_key"]
        )
        for row in rows:
            writer.writerow(
                [row["account"], row["name"], row["occurred_at"], "", "", "", row["idempotency_key"]]
            )
    try:
        with transaction.atomic():
            started = time.perf_counter()
            import_csv(kind="events", path_or_file=handle.name)
            elapsed = time.perf_counter() - started
            transaction.set_rollback(True)
    finally:
        Path(handle.name).unlink()
    return elapsed


def _post_batches(batches: list[list[dict]], token: str, clients: int = 2) -> list[dict]:
    """POST the batches over HTTP from ``clients`` threads (one per gunicorn worker)."""
    import requests

    answers: list[dict] = [{} for _ in batches]
    errors: list[str] = []

    def work(indexes: list[int]) -> None:
        with requests.Session() as session:
            session.headers["Authorization"] = f"Token {token}"
            for index in indexes:
                response = session.post(
                    f"http://127.0.0.1:{PORT}/api/v1/events/", json=batches[index], timeout=300
                )
                if response.status_code >= 300:
                    errors.append(f"{response.status_code} {response.text[:200]}")
                else:
                    answers[index] = response.json()

    threads = [
        threading.Thread(target=work, args=(list(range(c, len(batches), clients)),)) for c in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"ingestion failed: {errors[0]}")
    return answers


STATE = """
SELECT (SELECT COUNT(*) FROM accounts_event), (SELECT COALESCE(SUM(count), 0) FROM accounts_eventdaily),
       (SELECT COALESCE(SUM(value_sum), 0) FROM accounts_eventdaily), (SELECT COUNT(*) FROM accounts_contact)
"""


def _bench_ingestion(results: Results, *, now: dt.datetime) -> None:
    _, token = _bench_user()
    rows = _ingest_rows(now)
    batches = [rows[start : start + BATCH] for start in range(0, len(rows), BATCH)]
    copy_seconds = min(_copy_floor(rows), _copy_floor(rows))
    copy_rate = len(rows) / copy_seconds
    csv_rate = len(rows) / _csv_import(rows)
    api_seconds, answers = _timed(_post_batches, batches, token)
    accepted = sum(answer.get("accepted", 0) for answer in answers)
    assert accepted == len(rows), f"API accepted {accepted} of {len(rows)}"
    api_rate = len(rows) / api_seconds
    results.add(
        "API POST /api/v1/events/ (10,000-row batches, 2 gunicorn workers)",
        api_rate,
        "events/s",
        floor=copy_rate,
        floor_name="psycopg COPY of the same rows into the same indexed table",
        target="≥ 0.25x COPY and ≥ 25,000 events/s",
    )
    results.add(
        "CSV import (import_csv events)",
        csv_rate,
        "events/s",
        floor=copy_rate,
        floor_name="psycopg COPY of the same rows",
        target="≥ 0.5x COPY",
    )
    before = _sql(STATE)
    for _ in range(3):
        replayed = _post_batches(batches, token)
        assert sum(a.get("duplicates", 0) for a in replayed) == len(rows)
    after = _sql(STATE)
    assert before == after, f"replaying changed the database: {before} → {after}"
    results.add("replay every batch 3x leaves the database unchanged", 1.0, "bool", note=f"state {after[0]}")


# --- (d) queries per page, the API list vs a plain .values() view ----------------------------------


def _bench_queries(results: Results) -> None:
    """SQL queries of each page (in process, Django's test client) and the API list vs its floor."""
    from django.db import connection
    from django.http import JsonResponse
    from django.test import Client, RequestFactory
    from django.test.utils import CaptureQueriesContext

    from accounts.models import Account
    from accounts.serializers import AccountSerializer
    from accounts.visibility import visible_accounts

    user, manager, account = _page_users()
    for label, who, path in _pages(user, manager, account):
        client = Client(HTTP_HOST="localhost")
        client.force_login(who)
        client.get(path)  # warm
        with CaptureQueriesContext(connection) as queries:
            status = client.get(path).status_code
        results.add(
            f"{label} SQL queries", len(queries), "queries", target="≤ 15 a page", note=f"HTTP {status}"
        )

    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    fields = AccountSerializer.Meta.fields

    def plain_view(request):
        rows = list(visible_accounts(request.user).order_by("name", "id").values(*fields)[:50])
        return JsonResponse({"results": rows}, json_dumps_params={"default": str})

    request = RequestFactory().get("/plain/")
    request.user = user
    timings = {"api": [], "plain": []}
    for _ in range(REQUESTS):
        api_seconds, _ = _timed(client.get, "/api/v1/accounts/")
        plain_seconds, _ = _timed(plain_view, request)
        timings["api"].append(api_seconds)
        timings["plain"].append(plain_seconds)
    owned = Account.objects.filter(owner=user).count()
    api_rate = 1 / statistics.median(timings["api"])
    plain_rate = 1 / statistics.median(timings["plain"])
    results.add(
        "/api/v1/accounts/ (CSM) in process",
        api_rate,
        "req/s",
        floor=plain_rate,
        floor_name="a plain Django view: the same queryset .values() as JSON (first page)",
        target="≥ 0.6x the plain view",
        note=f"medians of {REQUESTS}; one process, no HTTP; the CSM owns {owned:,} accounts",
    )


def _page_users():
    from django.contrib.auth import get_user_model

    from accounts.models import Account

    user = get_user_model().objects.filter(username__startswith="gen-csm-").order_by("id").last()
    manager = get_user_model().objects.get(pk=user.teams.get().manager_id)
    account = Account.objects.filter(owner=user).order_by("id").first()
    return user, manager, account


def _pages(user, manager, account) -> list[tuple]:
    return [
        ("My book /", user, "/"),
        ("account page", user, f"/accounts/{account.pk}/"),
        ("/renewals/ (manager)", manager, "/renewals/"),
        ("/api/v1/accounts/", user, "/api/v1/accounts/"),
        ("/api/v1/reports/renewals/ (manager)", manager, "/api/v1/reports/renewals/"),
    ]


# --- (f) load: 50 users with think time (bench/load.py, locust) -------------------------------------


def _bench_load(results: Results) -> None:
    """Issue 7's pages under 50 users with think time (p50/p95/p99, errors) and My book closed-loop.

    ``bench.load`` (locust) runs in its own process: it patches the standard library with gevent,
    which must not happen in this one. It logs in as the CSM and the manager of ``_bench_latencies``.
    """
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.filter(username__startswith="gen-csm-").order_by("id").last()
    manager = get_user_model().objects.get(pk=user.teams.get().manager_id)
    logins = [
        "--login",
        f"csm={user.username}",
        "--login",
        f"manager={manager.username}",
        "--password",
        "bench",
    ]
    runs = (
        (
            "pages",
            int(os.environ.get("BENCH_LOAD_USERS", "50")),
            int(os.environ.get("BENCH_LOAD_SECONDS", "60")),
        ),
        ("closed-loop", 8, 20),
    )
    with tempfile.TemporaryDirectory() as scratch:
        for scenario, users, seconds in runs:
            out = Path(scratch) / f"{scenario}.json"
            subprocess.run(  # noqa: S603 - our own argv
                [
                    sys.executable,
                    "-m",
                    "bench.load",
                    "--base-url",
                    f"http://127.0.0.1:{PORT}",
                    "--scenario",
                    scenario,
                    "--users",
                    str(users),
                    "--seconds",
                    str(seconds),
                    "--json",
                    str(out),
                    *logins,
                ],
                cwd=ROOT,
                check=True,
            )
            figures = json.loads(out.read_text())
            if scenario == "closed-loop":
                total = figures["total"]
                results.add(
                    f"My book closed-loop ({users} users, no think time)",
                    total["rps"],
                    "req/s",
                    target="≥ 200 req/s",
                    note=f"p50 {total['p50_ms']} ms; {total['errors']} errors",
                )
                continue
            for row in figures["requests"]:
                results.add(
                    f"{row['name']} under {users} users p95",
                    row["p95_ms"],
                    "ms",
                    target="p95 ≤ 150 ms, p99 ≤ 400 ms, 0 errors",
                    note=f"p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms, {row['errors']} errors "
                    f"of {row['requests']}, {row['rps']} req/s",
                )


# --- (d) latencies -------------------------------------------------------------------------------


def _bench_latencies(results: Results) -> None:
    import requests
    from django.contrib.auth import get_user_model

    from accounts.models import Account

    user = get_user_model().objects.filter(username__startswith="gen-csm-").order_by("id").last()
    user.set_password("bench")
    user.save(update_fields=["password"])
    from access.tokens import issue_token

    token = issue_token(user=user)[1]
    account = Account.objects.filter(owner=user).order_by("id").first()
    manager = get_user_model().objects.get(pk=user.teams.get().manager_id)
    manager.set_password("bench")
    manager.save(update_fields=["password"])
    manager_token = issue_token(user=manager)[1]
    base = f"http://127.0.0.1:{PORT}"
    pages = _logged_in(base, user.username)
    manager_pages = _logged_in(base, manager.username)
    api = requests.Session()
    api.headers["Authorization"] = f"Token {token}"
    manager_api = requests.Session()
    manager_api.headers["Authorization"] = f"Token {manager_token}"
    owned = Account.objects.filter(owner=user).count()
    for label, session, path in (
        ("My book /", pages, "/"),
        ("account page", pages, f"/accounts/{account.pk}/"),
        ("/renewals/ (manager)", manager_pages, "/renewals/"),
        ("/api/v1/accounts/", api, "/api/v1/accounts/"),
        ("/api/v1/reports/renewals/ (manager)", manager_api, "/api/v1/reports/renewals/"),
    ):
        timings, errors = [], 0
        for _ in range(REQUESTS):
            started = time.perf_counter()
            response = session.get(f"{base}{path}", timeout=60, allow_redirects=False)
            timings.append((time.perf_counter() - started) * 1000)
            errors += response.status_code != 200
        timings.sort()
        p50 = statistics.median(timings)
        p95 = timings[int(0.95 * len(timings)) - 1]
        note = f"p95 {p95:.1f} ms; {errors} errors of {REQUESTS} sequential; the CSM owns {owned:,} accounts"
        results.add(f"{label} p50", p50, "ms", target="p95 ≤ 150 ms", note=note)
        results.rows[-1]["p95_ms"] = round(p95, 1)
        results.rows[-1]["errors"] = errors


def _logged_in(base: str, username: str):
    import requests

    session = requests.Session()
    session.get(f"{base}/login/", timeout=30)
    session.post(
        f"{base}/login/",
        data={"username": username, "password": "bench", "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        headers={"Referer": f"{base}/login/"},
        timeout=30,
    )
    return session


def _print_table(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Lifeline bench {report['date']} — {report['size']['accounts']:,} accounts")
    for column in ("figure", "value", "floor", "ratio", "target", "note"):
        table.add_column(column)
    for row in report["figures"]:
        table.add_row(
            row["figure"],
            f"{row['value']:,.3f} {row['unit']}",
            f"{row['floor']:,.3f}" if row["floor"] is not None else "",
            f"{row['ratio']:.2f}x" if row["ratio"] is not None else "",
            row["target"],
            row["note"],
        )
    Console(width=200).print(table)


if __name__ == "__main__":
    sys.exit(main())
