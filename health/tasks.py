"""Celery tasks of the health app: thin wrappers around domain functions."""

from celery import shared_task
from django.utils import timezone

from accounts.steps import recorded
from health.renewal_forecast import RENEWAL_FORECAST_STEP, run_daily_renewal_forecast
from health.scoring import RECOMPUTE_STEP, run_recompute_step


@shared_task(acks_late=True, reject_on_worker_lost=True)
def recompute_health_task(full: bool = True) -> int | None:
    """Recompute every account's health (``full=False``: the changed ones); skips (None) while
    another worker runs it. Idempotent."""
    with recorded(RECOMPUTE_STEP) as run:
        changes = run_recompute_step(full=full)
        run.done(changes.counts() if changes is not None else None)
    return changes.accounts if changes is not None else None


@shared_task
def renewal_forecast_task() -> int:
    """Learn today's renewal rates and keep today's forecasts; returns the forecasts kept. Idempotent."""
    with recorded(RENEWAL_FORECAST_STEP) as run:
        snapshot, kept = run_daily_renewal_forecast(today=timezone.now().date())
        run.done({"forecasts_kept": kept, "learned_on": snapshot.learned_on.isoformat()})
    return kept
