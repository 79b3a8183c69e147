"""Celery task of the insights app: a thin wrapper around the step."""

from celery import shared_task

from accounts.steps import recorded
from insights.recompute import STEP_LOCK, run_insights_step


@shared_task(acks_late=True, reject_on_worker_lost=True)
def recompute_insights_task() -> dict[str, int] | None:
    """The insights step under its lock (None when another run holds it). Safe to run twice."""
    with recorded(STEP_LOCK) as run:
        result = run_insights_step()
        run.done(result.counts() if result is not None else None)
    return result.counts() if result is not None else None
