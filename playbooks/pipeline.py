"""The scheduled pipeline: journeys → insights → health → playbooks → delivery, one locked step at a time.

Each step reads and writes the database only and holds its own PostgreSQL advisory lock, so two
beats or two workers cannot run it at once; every step is idempotent, so running the whole
pipeline twice makes nothing new.
"""

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from accounts.locking import step_lock
from accounts.steps import recorded
from playbooks.actions import PlaybookOutcome, fire_playbook
from playbooks.emails import queue_alert_emails
from playbooks.models import Alert, Playbook
from playbooks.triggers import TriggerConfigError, evaluate_trigger

logger = logging.getLogger(__name__)

PLAYBOOKS_STEP = "playbooks.evaluate"
# No lock of its own (the outbox rows are claimed one by one); named for its run records.
DELIVERY_STEP = "playbooks.deliver"


@dataclass
class PlaybooksResult:
    outcomes: list[PlaybookOutcome] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    emails_queued: int = 0

    def counts(self) -> dict[str, int]:
        return {
            "fired": sum(o.fired for o in self.outcomes),
            "tasks_created": sum(o.tasks_created for o in self.outcomes),
            "tasks_updated": sum(o.tasks_updated for o in self.outcomes),
            "tasks_closed": sum(o.tasks_closed for o in self.outcomes),
            "alerts": sum(o.alerts for o in self.outcomes),
            "emails_queued": self.emails_queued,
            "playbook_errors": len(self.errors),
        }


def evaluate_playbooks(*, now: dt.datetime) -> PlaybooksResult:
    """Evaluate every active playbook and act on its firings; queue the alert emails (outbox).

    A playbook whose configuration is broken is reported and skipped; the others still run.
    """
    result = PlaybooksResult()
    for playbook in Playbook.objects.filter(active=True).prefetch_related("steps").order_by("id"):
        try:
            firings = evaluate_trigger(playbook, now=now)
        except TriggerConfigError as exc:
            logger.warning("playbook %s skipped: %s", playbook.pk, exc)
            result.errors[playbook.name] = str(exc)
            continue
        outcome = fire_playbook(playbook=playbook, firings=firings, now=now)
        if outcome.alert_ids:
            alerts = Alert.objects.filter(pk__in=outcome.alert_ids).select_related("account", "recipient")
            result.emails_queued += queue_alert_emails(alerts=alerts, now=now)
        result.outcomes.append(outcome)
    return result


def run_playbooks_step(*, now: dt.datetime | None = None) -> PlaybooksResult | None:
    """The playbooks step under its lock; None when another run holds it."""
    with step_lock(PLAYBOOKS_STEP) as acquired:
        if not acquired:
            return None
        return evaluate_playbooks(now=now or timezone.now())


def run_pipeline(*, now: dt.datetime | None = None, full: bool = True) -> dict[str, Any]:
    """All five steps in order, in this process (``manage.py run_pipeline``); returns their counts.

    Each step's run is recorded (``accounts.steps``) for the ops status page and the metrics.
    ``full=False`` rescores only the accounts whose inputs changed since the previous recompute,
    and those the journeys step just moved (``health.scoring.recompute_changed``).
    """
    from health.scoring import RECOMPUTE_STEP, run_recompute_step
    from insights.recompute import STEP_LOCK as INSIGHTS_STEP
    from insights.recompute import run_insights_step
    from journeys.evaluation import STEP_LOCK as JOURNEYS_STEP
    from journeys.evaluation import run_evaluation_step

    now = now or timezone.now()
    with recorded(JOURNEYS_STEP) as run:
        journeys = run_evaluation_step(now=now)
        run.done(journeys.counts() if journeys is not None else None)
    with recorded(INSIGHTS_STEP) as run:
        insights = run_insights_step(now=now)
        run.done(insights.counts() if insights is not None else None)
    with recorded(RECOMPUTE_STEP) as run:
        moved = (
            {c.account_id for c in journeys.stages_entered}
            | {c.account_id for c in journeys.milestones_completed}
            | {c.account_id for c in journeys.milestones_overdue}
            if journeys is not None
            else set()
        )
        health = run_recompute_step(now=now, full=full, also=moved)
        run.done(health.counts() if health is not None else None)
    with recorded(PLAYBOOKS_STEP) as run:
        playbooks = run_playbooks_step(now=now)
        run.done(playbooks.counts() if playbooks is not None else None)
    delivery = run_delivery_step()
    return {
        "journeys": journeys.counts() if journeys is not None else "skipped (locked)",
        "insights": insights.counts() if insights is not None else "skipped (locked)",
        "health": health.counts() if health is not None else "skipped (locked)",
        "playbooks": playbooks.counts() if playbooks is not None else "skipped (locked)",
        "delivery": delivery,
    }


def run_delivery_step() -> dict[str, int]:
    """Send every due email from the outbox, recorded as a run of the delivery step; return the counts."""
    from playbooks.delivery import deliver_all_due_emails

    with recorded(DELIVERY_STEP) as run:
        delivery = deliver_all_due_emails()
        counts = {"sent": delivery.sent, "failed": delivery.failed, "retried": delivery.retried}
        run.done(counts)
    return counts
