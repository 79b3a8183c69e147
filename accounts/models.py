"""Customer accounts and everything known about them.

Accounts carry denormalised "current state" columns (``stage``, ``health_score``,
``health_band``) that the journeys and health steps write, so that lists, filters and ordering
need no join into the higher apps (imports point one way: playbooks → health → journeys →
accounts).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower


class Team(models.Model):
    """A group of CSMs with one manager; an account belongs to at most one team."""

    name = models.CharField(max_length=100, unique=True)
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="managed_teams",
    )
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="teams")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Account(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        CHURNED = "churned", "Churned"

    class Band(models.TextChoices):
        RED = "red", "Red"
        YELLOW = "yellow", "Yellow"
        GREEN = "green", "Green"

    external_id = models.CharField(max_length=255, unique=True, help_text="The account's id in the CRM.")
    name = models.CharField(max_length=255)
    domain = models.CharField(max_length=255, blank=True)
    segment = models.CharField(max_length=64, blank=True, help_text="e.g. smb, mid-market, enterprise")
    tier = models.CharField(max_length=64, blank=True)
    arr = models.DecimalField("ARR", max_digits=14, decimal_places=2, default=0)
    currency = models.CharField(max_length=3, default="USD")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_accounts",
        db_index=False,  # account_owner_name_idx leads with the owner
    )
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="accounts")
    contract_start = models.DateField(null=True, blank=True)
    renewal_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    churned_at = models.DateField(null=True, blank=True)
    churn_reason = models.CharField(max_length=255, blank=True)
    # Current state, written by the journeys and health steps.
    stage = models.CharField(max_length=64, blank=True)
    health_score = models.DecimalField(max_digits=4, decimal_places=1, null=True, blank=True)
    health_band = models.CharField(max_length=8, choices=Band.choices, null=True, blank=True)  # noqa: DJ001 - null means unscored
    # When the account entered its band: the time of the first score of its current run in that
    # band (or of the override that set it). The band_entered trigger keys on it, rather than
    # walking back through the score history of every account in the band each run.
    health_band_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [
            # The renewals report (active accounts renewing within a window) and the journeys
            # pass's renewal windows opened since the previous pass (any status).
            models.Index(fields=["renewal_date"], name="account_renewal_idx"),
            # My book: the accounts of an owner, by name.
            models.Index(fields=["owner", "name"], name="account_owner_name_idx"),
            # The ``stage`` filter (equality). A ``db_index`` would add a second, pattern-ops
            # index for LIKE on PostgreSQL, which nothing runs.
            models.Index(fields=["stage"], name="account_stage_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(arr__gte=0), name="account_arr_not_negative"),
        ]

    def __str__(self) -> str:
        return self.name


class Contact(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="contacts")
    name = models.CharField(max_length=255, blank=True)
    email = models.EmailField(blank=True)
    title = models.CharField(max_length=255, blank=True)
    is_champion = models.BooleanField(default=False)
    external_id = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["account_id", "name", "id"]
        constraints = [
            # Events name their contact by email or external id within the account.
            models.UniqueConstraint(
                "account", Lower("email"), condition=~Q(email=""), name="contact_unique_email"
            ),
            models.UniqueConstraint(
                fields=["account", "external_id"],
                condition=~Q(external_id=""),
                name="contact_unique_external_id",
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.email or self.external_id or f"Contact {self.pk}"


class Event(models.Model):
    """One product-usage event, as sent by an integrator; immutable once stored."""

    id = models.BigAutoField(primary_key=True)
    # No index of its own: event_account_name_time_idx starts with the account.
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="events", db_index=False)
    contact = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    name = models.CharField(max_length=100)
    occurred_at = models.DateTimeField()
    value = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    properties = models.JSONField(default=dict, blank=True)
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001 - null: no key, never a conflict
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            # Events of an account by name and time (metrics, milestone rules, the timeline).
            models.Index(fields=["account", "name", "occurred_at"], name="event_account_name_time_idx"),
            # Windows over every account: the partial days at a window's ends, contacts active
            # in the last days (a few hours to days of events, not the whole table).
            models.Index(fields=["occurred_at"], name="event_time_idx"),
        ]
        constraints = [
            # A re-sent row with the same key is a duplicate, not a second event.
            models.UniqueConstraint(
                fields=["account", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="event_unique_idempotency_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} @ {self.occurred_at:%Y-%m-%d %H:%M}"


class EventDaily(models.Model):
    """Daily rollup of events per account, name and UTC day, kept in the insert's transaction."""

    # No index of its own: eventdaily_unique_day starts with the account.
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="event_days", db_index=False)
    name = models.CharField(max_length=100)
    day = models.DateField()
    count = models.PositiveIntegerField(default=0)
    value_sum = models.DecimalField(max_digits=18, decimal_places=2, default=0)

    class Meta:
        ordering = ["-day", "name"]
        verbose_name = "daily event rollup"
        constraints = [
            # The upsert key of the rollup; also serves "an account's activity by name and day".
            models.UniqueConstraint(fields=["account", "name", "day"], name="eventdaily_unique_day"),
        ]
        indexes = [
            # Metrics over all accounts for a window of days.
            models.Index(fields=["day", "name"], name="eventdaily_day_name_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.name} {self.day}: {self.count}"


class Ticket(models.Model):
    class Priority(models.TextChoices):
        LOW = "low", "Low"
        NORMAL = "normal", "Normal"
        HIGH = "high", "High"
        URGENT = "urgent", "Urgent"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        PENDING = "pending", "Pending"
        SOLVED = "solved", "Solved"
        CLOSED = "closed", "Closed"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="tickets")
    external_id = models.CharField(max_length=255, unique=True, help_text="The helpdesk's id.")
    subject = models.CharField(max_length=500, blank=True)
    priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.NORMAL)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    opened_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-opened_at", "-id"]
        indexes = [
            # Ticket metrics (open, urgent, opened in a window) per account.
            models.Index(fields=["account", "opened_at"], name="ticket_account_opened_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(closed_at__isnull=True) | Q(closed_at__gte=models.F("opened_at")),
                name="ticket_closed_after_opened",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.external_id} {self.subject}"


class SurveyResponse(models.Model):
    class Kind(models.TextChoices):
        NPS = "nps", "NPS"
        CSAT = "csat", "CSAT"

    SCORE_RANGES = {Kind.NPS: (0, 10), Kind.CSAT: (1, 5)}

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="surveys")
    contact = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="surveys"
    )
    kind = models.CharField(max_length=4, choices=Kind.choices)
    score = models.PositiveSmallIntegerField()
    comment = models.TextField(blank=True)
    responded_at = models.DateTimeField()
    external_id = models.CharField(
        max_length=255, null=True, blank=True, unique=True, help_text="Optional survey tool id."
    )

    class Meta:
        ordering = ["-responded_at", "-id"]
        indexes = [
            # Latest / average NPS and CSAT per account.
            models.Index(fields=["account", "kind", "responded_at"], name="survey_account_kind_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(Q(kind="nps") & Q(score__gte=0) & Q(score__lte=10))
                | (Q(kind="csat") & Q(score__gte=1) & Q(score__lte=5)),
                name="survey_score_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.score}"


class Touchpoint(models.Model):
    """CSM activity on an account: a call, meeting, email or note."""

    class Kind(models.TextChoices):
        CALL = "call", "Call"
        MEETING = "meeting", "Meeting"
        EMAIL = "email", "Email"
        NOTE = "note", "Note"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="touchpoints")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="touchpoints",
    )
    kind = models.CharField(max_length=8, choices=Kind.choices)
    occurred_at = models.DateTimeField()
    summary = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            # Days since the last touchpoint, and the account timeline.
            models.Index(fields=["account", "occurred_at"], name="touchpoint_account_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.occurred_at:%Y-%m-%d}"


class AuditEntry(models.Model):
    """Who changed what a user configures (owner, team, scorecard, playbook…), and when."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=64)
    changes = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [
            # The history of one object.
            models.Index(fields=["target_type", "target_id", "at"], name="audit_target_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.target_type}:{self.target_id}"


class StepRun(models.Model):
    """One run of a scheduled step (journeys, health, playbooks, delivery): when, how long, what it did.

    Written by ``accounts.steps.recorded`` around the step, outside the step's own transaction, so
    a failed step still leaves its row; read by the ops status page and the metrics.
    """

    class Outcome(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        SKIPPED = "skipped", "Skipped (another run held the lock)"
        FAILED = "failed", "Failed"

    step = models.CharField(max_length=64)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    outcome = models.CharField(max_length=9, choices=Outcome.choices, default=Outcome.RUNNING)
    counts = models.JSONField(default=dict, blank=True, help_text="What the step changed.")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [
            # A step's latest runs (status page, metrics) and pruning its old ones.
            models.Index(fields=["step", "-started_at"], name="steprun_step_started_idx"),
            # Recent failures across steps (status page).
            models.Index(
                fields=["started_at"], condition=models.Q(outcome="failed"), name="steprun_failed_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.step} at {self.started_at:%Y-%m-%d %H:%M:%S} ({self.outcome})"
