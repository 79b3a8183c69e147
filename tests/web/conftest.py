"""Helpers for the page tests: accounts with a score history, placed on the default journey."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import Account
from health.models import HealthScore, Scorecard
from journeys.evaluation import evaluate_journeys


def components(logins: float, tickets: float | None = 0) -> list[dict]:
    """Two measures as health stores them: logins (usage) and open tickets (support)."""
    login_points = min(100.0, logins * 10)
    rows = [
        {
            "measure": "logins",
            "label": "Logins (7 days)",
            "group": "usage",
            "metric": "event_count",
            "params": {"event": "login", "days": 7},
            "mapping": {"type": "linear", "zero_at": 0, "full_at": 10},
            "weight": 2,
            "raw": logins,
            "points": login_points,
            "contribution": None,
            "data_at": None,
        },
        {
            "measure": "open_tickets",
            "label": "Open tickets",
            "group": "support",
            "metric": "open_tickets",
            "params": {},
            "mapping": {"type": "thresholds", "points": [[0, 100], [2, 50], [4, 0]]},
            "weight": 1,
            "raw": tickets,
            "points": None if tickets is None else (100 if tickets < 2 else 50),
            "contribution": None,
            "data_at": None,
        },
    ]
    return rows


def give_history(
    account: Account, points: list[tuple[int, float]], *, now: dt.datetime | None = None
) -> None:
    """Scores ``(days ago, logins)`` for the account; its current score is the newest one."""
    now = now or timezone.now()
    card = Scorecard.objects.get(segment="", status="active")
    rows = []
    for days_ago, logins in sorted(points, reverse=True):
        parts = components(logins)
        score = Decimal(str(round((2 * min(100, logins * 10) + 100) / 3, 1)))
        band = "red" if score < 45 else "green" if score >= 75 else "yellow"
        rows.append(
            HealthScore(
                account=account,
                scorecard=card,
                computed_at=now - dt.timedelta(days=days_ago),
                score=score,
                computed_band=band,
                band=band,
                components=parts,
                missing=[],
            )
        )
    HealthScore.objects.bulk_create(rows)
    latest = rows[-1]
    entered = next(r for i, r in enumerate(rows) if all(later.band == latest.band for later in rows[i:]))
    Account.objects.filter(pk=account.pk).update(
        health_score=latest.score, health_band=latest.band, health_band_since=entered.computed_at
    )
    account.refresh_from_db()


@pytest.fixture
def place_on_journeys(db):
    """Run the journeys step now: accounts enter onboarding with its milestones."""

    def run(now: dt.datetime | None = None):
        return evaluate_journeys(now=now or timezone.now())

    return run
