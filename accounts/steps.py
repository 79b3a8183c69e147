"""A record of every run of a scheduled step, for the ops status page and the metrics.

It lives here, in the lowest app, beside ``locking.step_lock``, because every step's caller
(journeys, health and playbooks tasks, ``run_pipeline``) must be able to use it without importing
upward; the ops app only reads the rows. The step functions themselves know nothing of it.

Usage, where a task or the pipeline calls a step::

    with recorded(STEP_LOCK) as run:
        changes = run_evaluation_step(now=now)
        run.done(None if changes is None else changes.counts())   # None: skipped (locked)
"""

import datetime as dt
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from accounts.models import StepRun

logger = logging.getLogger(__name__)

ERROR_MAX_CHARS = 2000


@dataclass
class StepRecord:
    """What the body of ``recorded`` reports: the step's counts, or that it was skipped."""

    counts: dict[str, Any] = field(default_factory=dict)
    skipped: bool = False

    def done(self, counts: dict[str, Any] | None) -> None:
        """The step's counts; None when it did not run because another run held its lock."""
        if counts is None:
            self.skipped = True
        else:
            self.counts = counts


def keep_days() -> int:
    return settings.LIFELINE_STEP_RUNS_KEEP_DAYS


@contextmanager
def recorded(step: str) -> Iterator[StepRecord]:
    """Write a row when the step starts and complete it when it ends (or fails, re-raising).

    Runs outside the step's transaction: the first write commits before the step's lock is taken,
    so a crash mid-step leaves a ``running`` row behind, and a failure is recorded although the
    step's own work was rolled back. Old rows of the step are pruned as it finishes.
    """
    started = time.monotonic()
    run = StepRun.objects.create(step=step, started_at=timezone.now())
    record = StepRecord()
    try:
        yield record
    except Exception as exc:
        _finish(run, started, outcome=StepRun.Outcome.FAILED, error=f"{type(exc).__name__}: {exc}")
        raise
    outcome = StepRun.Outcome.SKIPPED if record.skipped else StepRun.Outcome.SUCCEEDED
    _finish(run, started, outcome=outcome, counts=record.counts)


def _finish(
    run: StepRun, started: float, *, outcome: str, counts: dict[str, Any] | None = None, error: str = ""
) -> None:
    run.finished_at = timezone.now()
    run.duration_seconds = round(time.monotonic() - started, 3)
    run.outcome = outcome
    run.counts = counts or {}
    run.error = error[:ERROR_MAX_CHARS]
    try:
        run.save(update_fields=["finished_at", "duration_seconds", "outcome", "counts", "error"])
        StepRun.objects.filter(
            step=run.step, started_at__lt=run.finished_at - dt.timedelta(days=keep_days())
        ).delete()
    except DatabaseError:
        # The database went away with the step; the step's own error (if any) is what matters.
        logger.exception("could not record the end of step %s", run.step)
