"""Celery tasks of the accounts app: thin wrappers around domain functions."""

import datetime as dt

from celery import shared_task

from accounts.rollups import rebuild_daily_rollups


@shared_task(acks_late=True, reject_on_worker_lost=True)
def rebuild_event_rollups(since: str | None = None) -> int:
    """Rebuild the daily event rollup from ``since`` (ISO date). Idempotent."""
    return rebuild_daily_rollups(since=dt.date.fromisoformat(since) if since else None)
