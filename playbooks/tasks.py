"""Celery tasks of the playbooks app: thin wrappers, one domain call each."""

from celery import chain, shared_task
from django.db import transaction
from django.utils import timezone

from accounts.locking import step_lock
from accounts.steps import recorded
from playbooks.digests import (
    DAILY_DIGESTS_STEP,
    WEEKLY_DIGESTS_STEP,
    queue_daily_csm_digests,
    queue_weekly_renewal_digests,
)
from playbooks.pipeline import (
    PLAYBOOKS_STEP,
    incremental_journeys_scope,
    run_delivery_step,
    run_playbooks_step,
)

# --- delivery and digests ------------------------------------------------------------------


@shared_task(ignore_result=True)
def deliver_emails_task() -> int:
    """Send every due email in the outbox; return how many went out. Safe on any number of workers.

    No step lock here, on purpose: ``step_lock`` holds its lock for one transaction, and the
    SMTP sends must happen outside any transaction (each row is committed as claimed before it
    is sent, and as sent right after), so the lock could only cover the claim, where
    ``SELECT … FOR UPDATE SKIP LOCKED`` and the lease already keep workers off each other's rows
    and let several of them share a long queue.
    """
    return run_delivery_step()["sent"]


def _queue_digests(queue, step: str) -> int:
    """Queue one kind of digest under the digests lock (once, whoever runs it), then send them.

    Each run is recorded under ``step`` for the pipeline page and the metrics."""
    with recorded(step) as run:
        with step_lock("playbooks.digests") as acquired:
            queued = queue(now=timezone.now()) if acquired else 0
            if queued:
                transaction.on_commit(deliver_emails_task.delay)
        run.done({"queued": queued} if acquired else None)
    return queued


@shared_task(ignore_result=True)
def send_daily_digests_task() -> int:
    """Queue today's CSM digests and have them sent."""
    return _queue_digests(queue_daily_csm_digests, DAILY_DIGESTS_STEP)


@shared_task(ignore_result=True)
def send_weekly_digests_task() -> int:
    """Queue this week's renewal digests for managers and have them sent."""
    return _queue_digests(queue_weekly_renewal_digests, WEEKLY_DIGESTS_STEP)


# --- the pipeline ---------------------------------------------------------------------------


@shared_task(acks_late=True, reject_on_worker_lost=True)
def evaluate_playbooks_task(full: bool = True) -> dict[str, int] | None:
    """The playbooks step under its lock (None when another run holds it); then send the emails.

    ``full=False``: only the accounts that changed since the previous evaluation.
    """
    with recorded(PLAYBOOKS_STEP) as run:
        result = run_playbooks_step(full=full)
        run.done(result.counts() if result is not None else None)
    if result is None:
        return None
    if result.emails_queued:
        deliver_emails_task.delay()
    return result.counts()


@shared_task(acks_late=True, reject_on_worker_lost=True)
def evaluate_journeys_incremental_task() -> dict[str, int] | None:
    """The journeys step of the 15-minute chain: rule and required milestones of the accounts that
    changed since the previous run only (``journeys.tasks.evaluate_journeys_task`` reads them all)."""
    from journeys.evaluation import STEP_LOCK as JOURNEYS_STEP
    from journeys.evaluation import run_evaluation_step

    now = timezone.now()
    with recorded(JOURNEYS_STEP) as run:
        changes = run_evaluation_step(now=now, changed=incremental_journeys_scope(now=now))
        run.done(None if changes is None else changes.counts())
    return None if changes is None else changes.counts()


@shared_task(ignore_result=True)
def run_pipeline_task(full: bool = False) -> str:
    """What beat runs: the chain journeys → insights → health → playbooks → delivery, one task per step.

    Each step takes its own lock and is idempotent, so a second beat, a retried message or an
    overlapping run makes nothing twice. The health step rescores only the accounts whose inputs
    changed, and the playbooks step looks at those only, unless ``full`` (``run_full_pipeline_task``,
    daily: what time alone changes). The insights step runs in the full runs only: RFM scores are
    quintiles over every account and CLV a yearly figure, so redoing them for every account every
    15 minutes (the whole step, ~13 s at 100,000 accounts) bought nothing a daily run does not.
    """
    from health.tasks import recompute_health_task
    from insights.tasks import recompute_insights_task
    from journeys.tasks import evaluate_journeys_task

    steps = [evaluate_journeys_task.si() if full else evaluate_journeys_incremental_task.si()]
    if full:
        steps.append(recompute_insights_task.si())
    steps.append(recompute_health_task.si(full=full))
    steps += [evaluate_playbooks_task.si(full=full), deliver_emails_task.si()]
    result = chain(*steps).apply_async()
    return result.id


@shared_task(ignore_result=True)
def run_full_pipeline_task() -> str:
    """The pipeline with every active account rescored (beat, daily): windows move with time alone."""
    return run_pipeline_task(full=True)
