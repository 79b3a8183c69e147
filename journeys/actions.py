"""What a person does to a journey by hand: complete a milestone, move an account's stage.

Both are audited. Completing a rule-based milestone by hand is allowed on purpose: the rule
reads events, and some achievements happen where no event is sent (an integration set up by the
customer's IT, a login through SSO that is not tracked); the milestone then records who
completed it (``completed_via="user"``). Transitions that follow (e.g. onboarding done) are made
by the next evaluation pass.
"""

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404

from accounts.audit import record_change
from accounts.models import Account
from journeys.evaluation import JourneyConfig, new_milestones, skip_open_milestones_of_left_visits
from journeys.models import AccountJourney, Milestone, Stage, StageChange


class MilestoneNotFound(Http404):
    """No milestone with that key in the account's current stage (a 404 in the API)."""


@transaction.atomic
def complete_milestone(*, account: Account, key: str, user, now: dt.datetime) -> Milestone:
    """Mark the milestone ``key`` of the account's current stage done by ``user``; idempotent."""
    state = AccountJourney.objects.select_related("stage").filter(account=account).first()
    if state is None:
        raise MilestoneNotFound("This account is not on a journey yet: run the journeys evaluation first.")
    milestone = (
        Milestone.objects.select_for_update(of=("self",))
        .select_related("definition")
        .filter(visit_id=state.visit_id, definition__key=key)
        .first()
    )
    if milestone is None:
        keys = ", ".join(
            Milestone.objects.filter(visit_id=state.visit_id).values_list("definition__key", flat=True)
        )
        raise MilestoneNotFound(
            f"No milestone {key!r} in the account's current stage {state.stage.key!r}"
            + (f"; its milestones are: {keys}." if keys else "; that stage has no milestones.")
        )
    if milestone.status == Milestone.Status.DONE:
        return milestone
    if milestone.status == Milestone.Status.SKIPPED:
        raise ValidationError({"key": f"Milestone {key!r} was skipped and can no longer be completed."})
    before = milestone.status
    milestone.status = Milestone.Status.DONE
    milestone.completed_at = now
    milestone.completed_via = Milestone.CompletedBy.USER
    milestone.completed_by = user if getattr(user, "is_authenticated", False) else None
    milestone.save(update_fields=["status", "completed_at", "completed_via", "completed_by"])
    record_change(
        actor=user,
        action="journey.milestone_completed",
        target=account,
        changes={"milestone": key, "stage": state.stage.key, "status": [before, milestone.status]},
    )
    return milestone


@transaction.atomic
def move_stage(*, account: Account, stage_key: str, reason: str, user, now: dt.datetime) -> StageChange:
    """Move the account to ``stage_key`` of its journey by hand, with a reason; audited."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the account is moved (it is kept in its history)."})
    # Serialise with the evaluation pass and other moves of this account.
    account = Account.objects.select_for_update().get(pk=account.pk)
    config = JourneyConfig.load()
    state = AccountJourney.objects.filter(account=account).first()
    journey = config.journeys.get(state.journey_id) if state else config.journey_for(account.segment)
    if journey is None:
        raise ValidationError({"stage": "No journey applies to this account: configure a default journey."})
    stage = next((s for s in config.stages_of.get(journey.id, []) if s.key == stage_key), None)
    if stage is None:
        keys = ", ".join(s.key for s in config.stages_of.get(journey.id, []))
        raise ValidationError(
            {"stage": f"Unknown stage {stage_key!r} in journey {journey.key!r}; one of: {keys}."}
        )
    if stage.entered_by == Stage.EnteredBy.ON_CHURN:
        raise ValidationError(
            {"stage": f"An account enters {stage.key!r} when its status is churned: change its status."}
        )
    if account.status == Account.Status.CHURNED:
        raise ValidationError({"stage": "The account is churned: set its status to active before moving it."})
    if state is not None and state.stage_id == stage.id:
        raise ValidationError({"stage": f"The account is already in {stage.key!r}."})

    from_stage = config.stages.get(state.stage_id) if state else None
    change = StageChange.objects.create(
        account=account,
        journey=journey,
        from_stage=from_stage,
        to_stage=stage,
        changed_at=now,
        recorded_at=now,
        cause=StageChange.Cause.MANUAL,
        reason=reason[:500],
        changed_by=user if getattr(user, "is_authenticated", False) else None,
    )
    handled = state.renewal_date_handled if state else None
    if stage.entered_by == Stage.EnteredBy.BEFORE_RENEWAL:
        handled = account.renewal_date
    AccountJourney.objects.update_or_create(
        account=account,
        defaults={
            "journey": journey,
            "stage": stage,
            "visit": change,
            "entered_at": now,
            "renewal_date_handled": handled,
        },
    )
    skip_open_milestones_of_left_visits(now=now)
    Milestone.objects.bulk_create(
        new_milestones(config=config, account_id=account.pk, visit=change, entered_at=now),
        ignore_conflicts=True,
    )
    before = account.stage
    account.stage = stage.key
    account.save(update_fields=["stage", "updated_at"])
    record_change(
        actor=user,
        action="journey.stage_moved",
        target=account,
        changes={"stage": [before, stage.key], "reason": reason},
    )
    return change
