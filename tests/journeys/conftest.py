"""Helpers for the journeys tests: a clock, events through ingestion, the default journey."""

import datetime as dt

import pytest

from accounts.ingestion import ingest_events
from accounts.models import Account
from journeys.models import Journey

T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)  # a Monday


def at(days: float, hours: float = 0) -> dt.datetime:
    """``days`` after T0."""
    return T0 + dt.timedelta(days=days, hours=hours)


def send_events(account: Account, *rows: tuple[str, dt.datetime] | tuple[str, dt.datetime, str]) -> None:
    """Store events as an integrator would (so the daily rollup is kept): (name, when[, contact])."""
    payload = []
    for row in rows:
        item = {"account": account.external_id, "name": row[0], "occurred_at": row[1].isoformat()}
        if len(row) > 2:
            item["contact"] = row[2]
        payload.append(item)
    ingest_events(raw_rows=payload, accounts=Account.objects.all(), now=max(r[1] for r in rows))


@pytest.fixture
def default_journey(db) -> Journey:
    return Journey.objects.get(is_default=True)
