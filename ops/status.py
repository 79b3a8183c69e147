"""What the pipeline did lately: each step's last run, last success and last failure, the outbox.

A fixed number of queries whatever the number of runs (a few per step, each on an index).
"""

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Min, Q
from django.utils import timezone

from accounts.governance import RETENTION_STEP
from accounts.models import StepRun
from health.renewal_forecast import RENEWAL_FORECAST_STEP
from health.scoring import RECOMPUTE_STEP
from insights.recompute import STEP_LOCK as INSIGHTS_STEP
from journeys.evaluation import STEP_LOCK as JOURNEYS_STEP
from playbooks.digests import DAILY_DIGESTS_STEP, WEEKLY_DIGESTS_STEP
from playbooks.models import EmailDelivery
from playbooks.pipeline import DELIVERY_STEP, PLAYBOOKS_STEP

# The pipeline's steps in the order they run, with the names people read.
PIPELINE_STEPS: tuple[tuple[str, str], ...] = (
    (JOURNEYS_STEP, "Journeys"),
    (INSIGHTS_STEP, "Customer value"),
    (RECOMPUTE_STEP, "Health scores"),
    (PLAYBOOKS_STEP, "Playbooks"),
    (DELIVERY_STEP, "Email delivery"),
)
# The other scheduled jobs, recorded the same way and shown below the pipeline.
SCHEDULED_JOBS: tuple[tuple[str, str], ...] = (
    (DAILY_DIGESTS_STEP, "Daily CSM digests"),
    (WEEKLY_DIGESTS_STEP, "Weekly renewal digests"),
    (RENEWAL_FORECAST_STEP, "Renewal rates and forecasts"),
    (RETENTION_STEP, "Event retention"),
)


@dataclass
class StepStatus:
    step: str
    label: str
    last_run: StepRun | None
    last_success: StepRun | None
    last_failure: StepRun | None

    @property
    def failing(self) -> bool:
        """The latest finished run failed (a success since then clears it)."""
        if self.last_failure is None:
            return False
        return self.last_success is None or self.last_failure.started_at > self.last_success.started_at


def describe_counts(counts: dict[str, Any]) -> list[str]:
    """``{"fired": 2, "bands": {"red": 1}}`` → ``["fired 2", "bands: red 1"]``, zeros left out."""
    parts = []
    for key, value in counts.items():
        label = key.replace("_", " ")
        if isinstance(value, dict):
            inner = ", ".join(f"{k} {v}" for k, v in value.items() if v)
            if inner:
                parts.append(f"{label}: {inner}")
        elif value:
            parts.append(f"{label} {value}")
    return parts


def pipeline_status(steps: tuple[tuple[str, str], ...] = PIPELINE_STEPS) -> list[StepStatus]:
    """Each step's last run, last success and last failure (the pipeline's unless told)."""
    statuses = []
    for step, label in steps:
        runs = StepRun.objects.filter(step=step).order_by("-started_at", "-id")
        statuses.append(
            StepStatus(
                step=step,
                label=label,
                last_run=runs.first(),
                last_success=runs.filter(outcome=StepRun.Outcome.SUCCEEDED).first(),
                last_failure=runs.filter(outcome=StepRun.Outcome.FAILED).first(),
            )
        )
    return statuses


def recent_failures(*, limit: int = 10) -> list[StepRun]:
    return list(StepRun.objects.filter(outcome=StepRun.Outcome.FAILED).order_by("-started_at")[:limit])


@dataclass
class OutboxStatus:
    pending: int
    failed: int
    oldest_pending_at: dt.datetime | None

    @property
    def oldest_pending_age_seconds(self) -> float | None:
        if self.oldest_pending_at is None:
            return None
        return max(0.0, (timezone.now() - self.oldest_pending_at).total_seconds())


def outbox_status() -> OutboxStatus:
    """Emails still to send (pending or being sent), emails given up on, and the oldest one waiting."""
    to_send = Q(status__in=[EmailDelivery.Status.PENDING, EmailDelivery.Status.SENDING])
    row = EmailDelivery.objects.aggregate(
        pending=Count("id", filter=to_send),
        failed=Count("id", filter=Q(status=EmailDelivery.Status.FAILED)),
        oldest_pending_at=Min("created_at", filter=to_send),
    )
    return OutboxStatus(**row)
