"""Celery tasks of the health app: thin wrappers around domain functions."""

from celery import shared_task
from django.utils import timezone

from accounts.locking import step_lock
from health.scoring import recompute_health


@shared_task(acks_late=True, reject_on_worker_lost=True)
def recompute_health_task() -> int | None:
    """Recompute every account's health; skips (None) while another worker runs it. Idempotent."""
    with step_lock("health.recompute") as acquired:
        if not acquired:
            return None
        return recompute_health(now=timezone.now()).accounts
