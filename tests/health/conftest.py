"""Helpers for the health tests: ingestion through the real functions, scorecards from JSON."""

import datetime as dt
from typing import Any

import pytest

from accounts.ingestion import ingest_events, record_surveys, upsert_tickets
from accounts.models import Account, Touchpoint
from health.scorecards import create_scorecard, publish_scorecard

T = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)  # mid-day: windows have partial days at both ends
LATER = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)  # "now" for ingestion, so later data can exist


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def events(account: Account, *rows: tuple) -> None:
    """Rows of (name, "YYYY-MM-DD HH:MM", contact email or None, value or None)."""
    payload = []
    for name, when, contact, value in rows:
        row: dict[str, Any] = {
            "account": account.external_id,
            "name": name,
            "occurred_at": at(when).isoformat(),
        }
        if contact:
            row["contact"] = contact
        if value is not None:
            row["value"] = str(value)
        payload.append(row)
    ingest_events(raw_rows=payload, accounts=Account.objects.all(), now=LATER)


def tickets(account: Account, *rows: tuple) -> None:
    """Rows of (external_id, priority, status, opened, closed or None)."""
    upsert_tickets(
        raw_rows=[
            {
                "account": account.external_id,
                "external_id": external_id,
                "subject": external_id,
                "priority": priority,
                "status": status,
                "opened_at": at(opened).isoformat(),
                "closed_at": at(closed).isoformat() if closed else None,
            }
            for external_id, priority, status, opened, closed in rows
        ],
        accounts=Account.objects.all(),
        now=LATER,
    )


def surveys(account: Account, *rows: tuple) -> None:
    """Rows of (kind, score, "YYYY-MM-DD HH:MM")."""
    record_surveys(
        raw_rows=[
            {
                "account": account.external_id,
                "kind": kind,
                "score": score,
                "responded_at": at(when).isoformat(),
            }
            for kind, score, when in rows
        ],
        accounts=Account.objects.all(),
        now=LATER,
    )


def touchpoints(account: Account, *whens: str) -> None:
    Touchpoint.objects.bulk_create(Touchpoint(account=account, kind="call", occurred_at=at(w)) for w in whens)


def measure(
    key: str, metric: str, mapping: dict, *, weight: float = 1, group: str = "usage", **params
) -> dict:
    return {
        "key": key,
        "metric": metric,
        "params": params,
        "weight": weight,
        "mapping": mapping,
        "group": group,
    }


def scorecard(
    measures: list[dict], *, segment: str | None = None, red_below=40, green_from=70, publish=True, now=T
):
    """A scorecard made and (by default) published through the domain functions."""
    card = create_scorecard(
        actor=None,
        data={
            "name": f"Test {segment or 'default'}",
            "segment": segment,
            "red_below": red_below,
            "green_from": green_from,
            "measures": measures,
        },
        now=now,
    )
    return publish_scorecard(actor=None, scorecard=card, now=now) if publish else card


@pytest.fixture
def linear_logins(db):
    """A default scorecard with one measure: logins in 7 days, 0 → 0 points, 10 → 100."""
    return scorecard(
        [
            measure(
                "logins",
                "event_count",
                {"type": "linear", "zero_at": 0, "full_at": 10},
                event="login",
                days=7,
            )
        ]
    )
