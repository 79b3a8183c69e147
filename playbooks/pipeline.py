"""The scheduled pipeline: journeys → insights → health → playbooks → delivery, one locked step at a time.

Each step reads and writes the database only and holds its own PostgreSQL advisory lock, so two
beats or two workers cannot run it at once; every step is idempotent, so running the whole
pipeline twice makes nothing new.
"""

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from accounts.locking import step_lock
from accounts.models import Account
from accounts.shares import exceeds_share_of_active
from accounts.steps import recorded
from playbooks.actions import PlaybookOutcome, fire_playbook
from playbooks.emails import queue_alert_emails_by_id
from playbooks.models import Evaluation, Playbook
from playbooks.triggers import TriggerConfigError, evaluate_trigger

if TYPE_CHECKING:
    from health.scoring import ChangedSince

logger = logging.getLogger(__name__)

PLAYBOOKS_STEP = "playbooks.evaluate"
# An incremental run over more of the accounts than this looks at them all (as the health step).
FULL_ABOVE_SHARE = 0.25
# Evaluations older than this are pruned (only the latest one is read).
EVALUATIONS_KEPT = dt.timedelta(days=7)
# No lock of its own (the outbox rows are claimed one by one); named for its run records.
DELIVERY_STEP = "playbooks.deliver"


@dataclass
class PlaybooksResult:
    outcomes: list[PlaybookOutcome] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    emails_queued: int = 0
    full: bool = True  # every account looked at
    accounts: int | None = None  # how many were, when not full

    def counts(self) -> dict[str, Any]:
        return {
            "full": self.full,
            "accounts": self.accounts,
            "fired": sum(o.fired for o in self.outcomes),
            "tasks_created": sum(o.tasks_created for o in self.outcomes),
            "tasks_updated": sum(o.tasks_updated for o in self.outcomes),
            "tasks_closed": sum(o.tasks_closed for o in self.outcomes),
            "alerts": sum(o.alerts for o in self.outcomes),
            "emails_queued": self.emails_queued,
            "playbook_errors": len(self.errors),
        }


def changed_scope(*, now: dt.datetime, changed: "ChangedSince | None" = None) -> set[int] | None:
    """The accounts an incremental run looks at; None when it must look at every account.

    Since the previous evaluation: the accounts the health step rescored (its history rows,
    which include those the journeys step moved), those whose inputs changed (events, tickets,
    answers, milestones, stage changes, overrides, the account row: what makes the health step
    rescore, ``changed_account_ids``), and those whose RFM segment changed (insights step).
    Every account when there is no previous evaluation, a playbook changed since, or more than
    a quarter of the accounts changed (one pass over all is then cheaper than a list).
    ``changed``: the inputs' changes the pipeline read before its first step, used when they
    answer for the same span.
    """
    from health.models import HealthScore
    from health.scoring import changed_ids
    from insights.models import AccountValue

    previous = Evaluation.objects.filter(as_of__lte=now).order_by("-as_of", "-id").first()
    if previous is None:
        return None
    since = previous.as_of
    if Playbook.objects.filter(active=True, updated_at__gt=since, updated_at__lte=now).exists():
        return None  # a new or edited playbook: its filters and parameters apply to everyone
    rescored = HealthScore.objects.filter(computed_at__gt=since, computed_at__lte=now)
    segments = AccountValue.objects.filter(rfm_segment_since__gt=since, rfm_segment_since__lte=now)
    ids = changed_ids(since=since, now=now, known=changed)
    union = rescored.order_by().values_list("account_id").union(segments.order_by().values_list("account_id"))
    ids.update(pk for (pk,) in union)
    if exceeds_share_of_active(len(ids), FULL_ABOVE_SHARE):
        return None
    return ids


def evaluate_playbooks(
    *, now: dt.datetime, full: bool = True, changed: "ChangedSince | None" = None
) -> PlaybooksResult:
    """Evaluate every active playbook and act on its firings; queue the alert emails (outbox).

    ``full=False`` evaluates the triggers over the accounts that changed since the previous
    evaluation only (``changed_scope``). What only time changes (a renewal date coming within
    N days, a quiet spell growing, a review period starting) is then seen by the next full run
    (daily), as for the health step. A playbook whose configuration is broken is reported and
    skipped; the others still run.
    """
    scope = None if full else changed_scope(now=now, changed=changed)
    result = PlaybooksResult(full=scope is None, accounts=None if scope is None else len(scope))
    account_cache: dict[int, Account] = {}  # the accounts the templates see, loaded once for all playbooks
    for playbook in Playbook.objects.filter(active=True).prefetch_related("steps").order_by("id"):
        try:
            # Closing cleared tasks needs every account where the condition holds; otherwise
            # only the occurrences not fired yet matter.
            firings = evaluate_trigger(
                playbook, now=now, scope=scope, only_new=not playbook.close_tasks_when_cleared
            )
        except TriggerConfigError as exc:
            logger.warning("playbook %s skipped: %s", playbook.pk, exc)
            result.errors[playbook.name] = str(exc)
            continue
        outcome = fire_playbook(
            playbook=playbook, firings=firings, now=now, scope=scope, account_cache=account_cache
        )
        if outcome.alert_ids:
            # Only their ids: the emails' query reads what they show.
            result.emails_queued += queue_alert_emails_by_id(alert_ids=outcome.alert_ids, now=now)
        result.outcomes.append(outcome)
    Evaluation.objects.create(as_of=now, full=scope is None, accounts=result.accounts)
    Evaluation.objects.filter(as_of__lt=now - EVALUATIONS_KEPT).delete()
    return result


def run_playbooks_step(
    *, now: dt.datetime | None = None, full: bool = True, changed: "ChangedSince | None" = None
) -> PlaybooksResult | None:
    """The playbooks step under its lock; None when another run holds it."""
    with step_lock(PLAYBOOKS_STEP) as acquired:
        if not acquired:
            return None
        return evaluate_playbooks(now=now or timezone.now(), full=full, changed=changed)


def run_pipeline(*, now: dt.datetime | None = None, full: bool = True) -> dict[str, Any]:
    """All five steps in order, in this process (``manage.py run_pipeline``); returns their counts.

    Each step's run is recorded (``accounts.steps``) for the ops status page and the metrics.
    ``full=False`` rescores only the accounts whose inputs changed since the previous recompute,
    and those the journeys step just moved (``health.scoring.recompute_changed``), and evaluates
    the playbooks over the accounts changed since their previous evaluation (``changed_scope``),
    and leaves the insights step (RFM, CLV, lifecycle) to the full runs.
    """
    from health.scoring import RECOMPUTE_STEP, changed_since_previous_recompute, run_recompute_step
    from insights.recompute import STEP_LOCK as INSIGHTS_STEP
    from insights.recompute import run_insights_step
    from journeys.evaluation import STEP_LOCK as JOURNEYS_STEP
    from journeys.evaluation import run_evaluation_step

    now = now or timezone.now()
    # An incremental run reads once what changed since the previous run, for every step.
    changed = None if full else changed_since_previous_recompute(now=now)
    with recorded(JOURNEYS_STEP) as run:
        scope = None if full else incremental_journeys_scope(now=now, changed=changed)
        journeys = run_evaluation_step(now=now, changed=scope)
        run.done(journeys.counts() if journeys is not None else None)
    insights = None
    if full:  # RFM ranks every account against all the others: a daily figure (see run_pipeline_task)
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
        if changed is not None:  # the playbooks step sees the accounts journeys just moved too
            changed = changed.with_accounts(moved)
        health = run_recompute_step(now=now, full=full, also=moved, changed=changed)
        run.done(health.counts() if health is not None else None)
    with recorded(PLAYBOOKS_STEP) as run:
        playbooks = run_playbooks_step(now=now, full=full, changed=changed)
        run.done(playbooks.counts() if playbooks is not None else None)
    delivery = run_delivery_step()
    return {
        "journeys": journeys.counts() if journeys is not None else "skipped (locked)",
        "insights": (
            insights.counts() if insights is not None else "skipped (locked)" if full else "full runs only"
        ),
        "health": health.counts() if health is not None else "skipped (locked)",
        "playbooks": playbooks.counts() if playbooks is not None else "skipped (locked)",
        "delivery": delivery,
    }


def incremental_journeys_scope(*, now: dt.datetime, changed: "ChangedSince | None" = None) -> set[int] | None:
    """The accounts an incremental journeys pass reads the milestones of (None: every account's).

    Those whose inputs changed since the previous journeys pass (``previous_pass_at``: its own
    time, not the previous recompute's, which a recompute run on its own moves). Every account's
    when there was no previous pass or more than a quarter changed (after a placement, every
    account: one pass over all is then cheaper than a list). ``changed``: what the caller already
    read (used when it answers for the same span).
    """
    from health.scoring import changed_ids
    from journeys.evaluation import previous_pass_at

    since = previous_pass_at(now=now)
    if since is None:
        return None
    ids = changed_ids(since=since, now=now, known=changed)
    return None if exceeds_share_of_active(len(ids), FULL_ABOVE_SHARE) else ids


def run_delivery_step() -> dict[str, int]:
    """Send every due email from the outbox, recorded as a run of the delivery step; return the counts."""
    from playbooks.delivery import deliver_all_due_emails

    with recorded(DELIVERY_STEP) as run:
        delivery = deliver_all_due_emails()
        counts = {"sent": delivery.sent, "failed": delivery.failed, "retried": delivery.retried}
        run.done(counts)
    return counts
