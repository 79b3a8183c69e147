"""Celery tasks of the journeys app: thin wrappers around the evaluation step."""

from celery import shared_task
from django.utils import timezone

from accounts.steps import recorded
from journeys.evaluation import STEP_LOCK, run_evaluation_step


@shared_task(acks_late=True, reject_on_worker_lost=True)
def evaluate_journeys_task() -> dict[str, int] | None:
    """Run the journeys step under its lock; None when another run holds it. Idempotent."""
    with recorded(STEP_LOCK) as run:
        changes = run_evaluation_step(now=timezone.now())
        run.done(None if changes is None else changes.counts())
    return None if changes is None else changes.counts()
