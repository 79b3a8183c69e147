"""Journeys, their stages and milestones (configuration), and where each account is (state).

Configuration is data: a stage says how it is entered (``Stage.EnteredBy``) and a milestone
definition says how it completes (``MilestoneDefinition.Completion``), so lifecycles other than
onboarding → adoption → renewal need no code. State is written by ``journeys.evaluation`` and
``journeys.actions``: one ``AccountJourney`` row per account (its current stage visit), the
``StageChange`` history (one row per visit), and one ``Milestone`` per account, visit and
definition.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Journey(models.Model):
    """A lifecycle; accounts of ``segment`` follow it, the default one takes everyone else."""

    key = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    segment = models.CharField(
        max_length=64, blank=True, help_text="Accounts of this segment follow it (case-insensitive)."
    )
    is_default = models.BooleanField(default=False, help_text="Followed by accounts of other segments.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-is_default", "name"]
        constraints = [
            # Placement picks "the default journey": there is at most one.
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="journey_one_default"
            ),
            # Placement picks "the journey of the account's segment": at most one per segment.
            models.UniqueConstraint(
                fields=["segment"], condition=~Q(segment=""), name="journey_unique_segment"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Stage(models.Model):
    """A step of a journey; ``entered_by`` is the rule that brings an account into it."""

    class EnteredBy(models.TextChoices):
        FIRST = "first", "First stage: where new accounts are placed"
        AFTER_PREVIOUS = "after_previous", "After the previous stage (its required milestones or maximum)"
        BEFORE_RENEWAL = "before_renewal", "A number of days before the renewal date"
        ON_CHURN = "on_churn", "When the account churns"
        MANUAL = "manual", "Only when moved by hand"

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="stages")
    key = models.SlugField(max_length=64)
    name = models.CharField(max_length=255)
    order = models.PositiveSmallIntegerField(help_text="Position in the journey.")
    entered_by = models.CharField(max_length=16, choices=EnteredBy.choices, default=EnteredBy.AFTER_PREVIOUS)
    days_before_renewal = models.PositiveSmallIntegerField(
        default=120, help_text="For 'before renewal' stages: entered this many days before the renewal date."
    )
    expected_days = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="How long an account usually stays (shown, not enforced)."
    )
    max_days = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="The next 'after previous' stage is entered after this many days at most.",
    )
    renewed_returns_to = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="For 'before renewal' stages: where an account goes when its renewal date moves forward.",
    )

    class Meta:
        ordering = ["journey_id", "order"]
        constraints = [
            # Milestone and stage moves name a stage by key within the account's journey.
            models.UniqueConstraint(fields=["journey", "key"], name="stage_unique_key"),
            # "The previous stage" must be unambiguous.
            models.UniqueConstraint(fields=["journey", "order"], name="stage_unique_order"),
            # Placement puts new accounts in "the first stage" of their journey.
            models.UniqueConstraint(
                fields=["journey"], condition=Q(entered_by="first"), name="stage_one_first_per_journey"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.renewed_returns_to_id and self.renewed_returns_to.journey_id != self.journey_id:
            raise ValidationError({"renewed_returns_to": "Must be a stage of the same journey."})


class MilestoneDefinition(models.Model):
    """Something an account should achieve in a stage, due some days after entering it."""

    class Completion(models.TextChoices):
        MANUAL = "manual", "By hand"
        EVENT_COUNT = "event_count", "At least N events within D days of entering the stage"
        ACTIVE_WEEKS = "active_weeks", "Active on at least K distinct weeks within the first W weeks"
        DISTINCT_CONTACTS = "distinct_contacts", "At least N distinct contacts did the event (within D days)"

    stage = models.ForeignKey(Stage, on_delete=models.CASCADE, related_name="milestones")
    key = models.SlugField(max_length=64)
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    order = models.PositiveSmallIntegerField(default=0)
    due_days = models.PositiveSmallIntegerField(help_text="Due this many days after the stage is entered.")
    required = models.BooleanField(
        default=True, help_text="The stage is done when all its required milestones are done."
    )
    completion = models.CharField(max_length=20, choices=Completion.choices, default=Completion.MANUAL)
    event = models.CharField(
        max_length=100, blank=True, help_text="Event name for rules; blank: any event (active weeks only)."
    )
    threshold = models.PositiveIntegerField(default=1, help_text="N events, K weeks or N contacts.")
    window_days = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="D days from the stage's first (UTC) day; for active weeks 7 x W. Blank: no end.",
    )

    class Meta:
        ordering = ["stage_id", "order", "id"]
        constraints = [
            # `POST /accounts/{id}/milestones/{key}/complete/` finds the milestone by key in the stage.
            models.UniqueConstraint(fields=["stage", "key"], name="milestonedef_unique_key"),
            # Event rules need an event name (active weeks may count any event).
            models.CheckConstraint(
                condition=Q(completion__in=["manual", "active_weeks"]) | ~Q(event=""),
                name="milestonedef_rule_has_event",
            ),
            # Active weeks are counted over whole weeks: W weeks = 7 x W days.
            models.CheckConstraint(
                condition=~Q(completion="active_weeks")
                | (Q(window_days__isnull=False) & Q(window_days__gte=7)),
                name="milestonedef_active_weeks_window",
            ),
            models.CheckConstraint(condition=Q(threshold__gte=1), name="milestonedef_threshold_positive"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.completion == self.Completion.ACTIVE_WEEKS and (self.window_days or 0) % 7:
            raise ValidationError({"window_days": "Active weeks are counted over whole weeks: use 7 x W."})
        if (
            self.completion in (self.Completion.EVENT_COUNT, self.Completion.DISTINCT_CONTACTS)
            and not self.event
        ):
            raise ValidationError({"event": "This rule counts an event: name it."})


class StageChange(models.Model):
    """One stage visit: the account entered ``to_stage`` at ``changed_at``, and why."""

    class Cause(models.TextChoices):
        PLACED = "placed", "Placed in its first stage"
        MILESTONES = "milestones", "Required milestones done"
        MAX_DURATION = "max_duration", "Stage's maximum duration reached"
        RENEWAL_WINDOW = "renewal_window", "Renewal date approaching"
        RENEWED = "renewed", "Renewal date moved forward"
        CHURNED = "churned", "Account churned"
        REACTIVATED = "reactivated", "Account active again"
        MANUAL = "manual", "Moved by hand"

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="stage_changes")
    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="+")
    from_stage = models.ForeignKey(Stage, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    to_stage = models.ForeignKey(Stage, on_delete=models.CASCADE, related_name="+")
    changed_at = models.DateTimeField()
    cause = models.CharField(max_length=16, choices=Cause.choices)
    reason = models.CharField(max_length=500, blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    recorded_at = models.DateTimeField(
        default=timezone.now, help_text="When Lifeline learnt of it (later than changed_at when backdated)."
    )

    class Meta:
        ordering = ["account_id", "changed_at", "id"]
        indexes = [
            # The stage at a time: the latest change of an account at or before `as_of`; history.
            models.Index(fields=["account", "changed_at"], name="stagechange_account_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id}: → {self.to_stage_id} @ {self.changed_at:%Y-%m-%d}"


class AccountJourney(models.Model):
    """Where an account is now: its journey, current stage and the visit that entered it."""

    account = models.OneToOneField(
        "accounts.Account", primary_key=True, on_delete=models.CASCADE, related_name="journey_state"
    )
    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="+")
    stage = models.ForeignKey(Stage, on_delete=models.CASCADE, related_name="+")
    visit = models.OneToOneField(StageChange, on_delete=models.CASCADE, related_name="+")
    entered_at = models.DateTimeField()
    renewal_date_handled = models.DateField(
        null=True, blank=True, help_text="The renewal date whose renewal stage has been entered already."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "account journey"
        indexes = [
            # Accounts per stage (admin filter, stage counts); the journeys pass's maximum
            # durations that ended since the previous pass.
            models.Index(fields=["stage", "entered_at"], name="accountjourney_stage_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} in {self.stage_id}"


class Milestone(models.Model):
    """A milestone definition instantiated for one account's visit of its stage."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        OVERDUE = "overdue", "Overdue"
        SKIPPED = "skipped", "Skipped"

    class CompletedBy(models.TextChoices):
        RULE = "rule", "Rule"
        USER = "user", "By hand"

    OPEN_STATUSES = (Status.PENDING, Status.OVERDUE)

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="milestones")
    visit = models.ForeignKey(StageChange, on_delete=models.CASCADE, related_name="milestones")
    definition = models.ForeignKey(MilestoneDefinition, on_delete=models.CASCADE, related_name="instances")
    due_at = models.DateTimeField()
    window_start = models.DateField(help_text="First UTC day counted: the day the stage was entered.")
    window_end = models.DateField(null=True, blank=True, help_text="First UTC day no longer counted.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    completed_at = models.DateTimeField(null=True, blank=True)
    completed_via = models.CharField(max_length=4, choices=CompletedBy.choices, blank=True)
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    skipped_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["visit_id", "due_at", "id"]
        constraints = [
            # One instance per visit and definition: creation is an idempotent insert.
            models.UniqueConstraint(fields=["visit", "definition"], name="milestone_unique_per_visit"),
            models.CheckConstraint(
                condition=~Q(status="done") | Q(completed_at__isnull=False), name="milestone_done_has_time"
            ),
        ]
        indexes = [
            # Rule completion and overdue marking scan only the milestones still open.
            models.Index(
                fields=["due_at"],
                name="milestone_open_due_idx",
                condition=Q(status__in=["pending", "overdue"]),
            ),
            # The milestone_overdue trigger: an account's overdue milestones. A few hundred rows;
            # without it PostgreSQL probed the open-milestone index once per account (7 s at S).
            models.Index(
                fields=["account"], name="milestone_overdue_account_idx", condition=Q(status="overdue")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id}: {self.definition_id} ({self.status})"


class JourneyPass(models.Model):
    """One journeys pass: as of when, and whether it read every account's milestones.

    An incremental pass reads the milestones of the accounts that changed since the previous pass
    only, so it needs to know when that was (its own time, not the health step's: a recompute
    run on its own does not read milestones), and what configuration it applied (a pass after an
    admin's edit reads every account).
    """

    # Unique: a second pass at the same time records nothing (and the latest pass at or before a
    # time is one index probe).
    as_of = models.DateTimeField(unique=True)
    full = models.BooleanField()
    config_digest = models.CharField(
        max_length=64, blank=True, help_text="The journeys, stages and milestone rules the pass applied."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-as_of", "-id"]

    def __str__(self) -> str:
        return f"{'full' if self.full else 'incremental'} journeys pass as of {self.as_of:%Y-%m-%d %H:%M}"
