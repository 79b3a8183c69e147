"""Celery tasks of the health app: thin wrappers around domain functions."""

from celery import shared_task

from health.scoring import run_recompute_step


@shared_task(acks_late=True, reject_on_worker_lost=True)
def recompute_health_task() -> int | None:
    """Recompute every account's health; skips (None) while another worker runs it. Idempotent."""
    changes = run_recompute_step()
    return changes.accounts if changes is not None else None
