"""Celery tasks of the accounts app: thin wrappers around domain functions."""

import datetime as dt

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from accounts.governance import RETENTION_STEP, prune_events
from accounts.rollups import rebuild_daily_rollups
from accounts.steps import recorded


@shared_task(acks_late=True, reject_on_worker_lost=True)
def rebuild_event_rollups(since: str | None = None) -> int:
    """Rebuild the daily event rollup from ``since`` (ISO date). Idempotent."""
    return rebuild_daily_rollups(since=dt.date.fromisoformat(since) if since else None)


@shared_task(ignore_result=True)
def prune_events_task() -> int:
    """The retention policy: delete raw events older than LIFELINE_EVENT_RETENTION_DAYS (0: keep all)."""
    days = settings.LIFELINE_EVENT_RETENTION_DAYS
    with recorded(RETENTION_STEP) as run:
        pruned = prune_events(older_than_days=days, now=timezone.now()) if days else 0
        run.done({"events_deleted": pruned, "retention_days": days})
    return pruned
