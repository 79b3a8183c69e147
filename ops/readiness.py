"""Is this process fit to serve? The checks behind ``/readyz``, each answering None or what failed.

Each check is bounded in time (a load balancer polls every few seconds and must not pile up
requests behind a dead broker) and reports a short reason, never a URL or a password.
"""

from collections.abc import Callable

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.loader import MigrationLoader
from kombu import Connection

BROKER_TIMEOUT_SECONDS = 2.0


def check_database() -> str | None:
    """The default database answers a query."""
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return f"database unreachable: {type(exc).__name__}"
    return None


def check_broker() -> str | None:
    """The Celery broker accepts a connection within ``BROKER_TIMEOUT_SECONDS``."""
    connection = Connection(
        settings.CELERY_BROKER_URL,
        connect_timeout=BROKER_TIMEOUT_SECONDS,
        transport_options=getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}),
    )
    try:
        connection.ensure_connection(
            max_retries=1, interval_start=0, interval_step=0, timeout=BROKER_TIMEOUT_SECONDS
        )
    except Exception as exc:
        return f"broker unreachable: {type(exc).__name__}"
    finally:
        connection.release()
    return None


def check_migrations() -> str | None:
    """Every migration in the code is applied to the database."""
    try:
        loader = MigrationLoader(connections[DEFAULT_DB_ALIAS])
    except Exception as exc:
        return f"migrations unknown: {type(exc).__name__}"
    # Every node, not the plan to the leaves: a plan skips a gap below an applied migration.
    unapplied = sorted(set(loader.graph.nodes) - set(loader.applied_migrations))
    if unapplied:
        names = ", ".join(f"{app}.{name}" for app, name in unapplied[:5])
        more = f" and {len(unapplied) - 5} more" if len(unapplied) > 5 else ""
        return f"{len(unapplied)} unapplied migration(s): {names}{more}"
    return None


CHECKS: dict[str, Callable[[], str | None]] = {
    "database": check_database,
    "broker": check_broker,
    "migrations": check_migrations,
}


def readiness() -> dict[str, str]:
    """Run every check; return ``{name: "ok" | reason}``. The migrations check needs the database."""
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        if name == "migrations" and results.get("database") != "ok":
            results[name] = "not checked: database unreachable"
            continue
        results[name] = check() or "ok"
    return results
