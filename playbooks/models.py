"""Playbooks and the work they create: runs, tasks, alerts and the email outbox.

Uniqueness is enforced by the database, not by checks in Python, so a pipeline step that runs
twice, or on two workers at once, cannot create anything twice:
a run is unique per (playbook, account, trigger key); an open task per (playbook, account); an
alert per (run, recipient); an email per outbox key.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.models import Account


class Trigger(models.TextChoices):
    BAND_ENTERED = "band_entered", "Health band entered"
    SCORE_DROPPED = "score_dropped", "Score dropped by N points within D days"
    STAGE_ENTERED = "stage_entered", "Stage entered"
    MILESTONE_OVERDUE = "milestone_overdue", "Milestone overdue"
    RENEWAL_WITHIN = "renewal_within", "Renewal within N days"
    NPS_DETRACTOR = "nps_detractor", "NPS detractor answer"
    INACTIVITY = "inactivity", "No activity for N days"
    RECURRING_REVIEW = "recurring_review", "Recurring review every N days"
    TASK_OVERDUE = "task_overdue", "A task is overdue"
    EXPANSION_SIGNAL = "expansion_signal", "Expansion signal (green and usage up)"
    # From the insights app (its migration 0002 records these choices; see insights/migrations).
    SEGMENT_ENTERED = "segment_entered", "RFM segment entered"
    NO_SURVEY_IN = "no_survey_in", "No NPS answer for N days"


class Priority(models.TextChoices):
    LOW = "low", "Low"
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"
    URGENT = "urgent", "Urgent"


class Playbook(models.Model):
    """When a trigger fires on an account that passes the filters, run the steps (once)."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    active = models.BooleanField(default=True)
    trigger = models.CharField(max_length=32, choices=Trigger.choices)
    trigger_params = models.JSONField(default=dict, blank=True, help_text='e.g. {"band": "red"}')
    segments = models.JSONField(default=list, blank=True, help_text="Only these segments (empty: all).")
    min_arr = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    stages = models.JSONField(default=list, blank=True, help_text="Only accounts in these stages.")
    bands = models.JSONField(default=list, blank=True, help_text="Only accounts in these bands.")
    cooldown_days = models.PositiveIntegerField(
        default=0, help_text="After firing on an account, stay quiet on it for this many days."
    )
    close_tasks_when_cleared = models.BooleanField(
        default=False, help_text="Cancel this playbook's open tasks when the condition no longer holds."
    )
    # Only occurrences after this moment fire: a new playbook does not replay history.
    active_since = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Step(models.Model):
    class Kind(models.TextChoices):
        TASK = "task", "Create a task"
        ALERT = "alert", "Raise an alert"

    class AssigneeRule(models.TextChoices):
        OWNER = "owner", "Account owner"
        TEAM_MANAGER = "team_manager", "Team manager"
        ROUND_ROBIN = "round_robin", "Round-robin within the team"
        LEAST_LOADED = "least_loaded", "Least-loaded CSM of the team"
        USER = "user", "A named user"

    class RecipientRule(models.TextChoices):
        OWNER = "owner", "Account owner"
        TEAM_MANAGER = "team_manager", "Team manager"
        TEAM = "team", "Whole team"
        USERS = "users", "Named users"
        ADDRESSES = "addresses", "Email addresses"

    class Severity(models.TextChoices):
        INFO = "info", "Info"
        WARNING = "warning", "Warning"
        CRITICAL = "critical", "Critical"

    playbook = models.ForeignKey(Playbook, on_delete=models.CASCADE, related_name="steps")
    order = models.PositiveSmallIntegerField(default=0)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    title_template = models.CharField(
        max_length=300, help_text="Django template; context: account, playbook, reason."
    )
    description_template = models.TextField(blank=True)
    # Task steps
    due_in_days = models.PositiveIntegerField(default=3)
    priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.NORMAL)
    assignee_rule = models.CharField(
        max_length=16, choices=AssigneeRule.choices, default=AssigneeRule.OWNER, blank=True
    )
    assignee_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Alert steps
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.WARNING)
    recipient_rule = models.CharField(
        max_length=16, choices=RecipientRule.choices, default=RecipientRule.OWNER, blank=True
    )
    recipient_users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    recipient_addresses = models.TextField(blank=True, help_text="Comma-separated email addresses.")

    class Meta:
        ordering = ["playbook_id", "order", "id"]

    def __str__(self) -> str:
        return f"{self.playbook}: {self.get_kind_display()} #{self.order}"


class PlaybookRun(models.Model):
    """One firing of a playbook on an account for one occurrence of its trigger."""

    playbook = models.ForeignKey(Playbook, on_delete=models.CASCADE, related_name="runs")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="playbook_runs")
    trigger_key = models.CharField(max_length=200, help_text="Identifies the occurrence.")
    context = models.JSONField(default=dict, blank=True, help_text="The values that fired it.")
    fired_at = models.DateTimeField()

    class Meta:
        ordering = ["-fired_at", "-id"]
        constraints = [
            # Once per account and occurrence, however often the step runs.
            models.UniqueConstraint(
                fields=["playbook", "account", "trigger_key"], name="playbookrun_once_per_occurrence"
            ),
        ]
        indexes = [
            # Cooldown: the latest run of a playbook on an account.
            models.Index(fields=["playbook", "account", "fired_at"], name="playbookrun_cooldown_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.playbook} on {self.account_id} ({self.trigger_key})"


class Task(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="tasks")
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="tasks"
    )
    due_date = models.DateField()
    priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.NORMAL)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    playbook = models.ForeignKey(
        Playbook, null=True, blank=True, on_delete=models.SET_NULL, related_name="tasks"
    )
    step = models.ForeignKey(Step, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    run = models.ForeignKey(
        PlaybookRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="tasks"
    )
    reason = models.JSONField(default=dict, blank=True, help_text="Why it exists: playbook, trigger, values.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["due_date", "id"]
        constraints = [
            # No noise: one open task per playbook step and account; a new firing updates it.
            models.UniqueConstraint(
                fields=["step", "account"],
                condition=Q(status="open") & Q(step__isnull=False),
                name="task_one_open_per_step_and_account",
            ),
        ]
        indexes = [
            # My tasks: open tasks of an assignee by due date.
            models.Index(
                fields=["assignee", "due_date"], condition=Q(status="open"), name="task_open_by_assignee_idx"
            ),
            # Overdue tasks trigger and the account page.
            models.Index(fields=["account", "status"], name="task_account_status_idx"),
        ]

    def __str__(self) -> str:
        return self.title


class Alert(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="alerts")
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts"
    )
    email = models.EmailField(blank=True, help_text="For a recipient by address only.")
    recipient_key = models.CharField(max_length=260, help_text="user:<id> or email:<address>")
    kind = models.CharField(max_length=32, help_text="The trigger that raised it.")
    title = models.CharField(max_length=300)
    body = models.TextField(blank=True)
    severity = models.CharField(max_length=8, choices=Step.Severity.choices, default=Step.Severity.WARNING)
    playbook = models.ForeignKey(
        Playbook, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    run = models.ForeignKey(
        PlaybookRun, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts"
    )
    step = models.ForeignKey(Step, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reason = models.JSONField(default=dict, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    useful = models.BooleanField(null=True, blank=True, help_text="The recipient's judgement.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One alert per run, step and recipient (user or address).
            models.UniqueConstraint(
                fields=["run", "step", "recipient_key"],
                condition=Q(run__isnull=False),
                name="alert_once_per_run_step_recipient",
            ),
        ]
        indexes = [
            # My unread alerts.
            models.Index(
                fields=["recipient", "created_at"], condition=Q(read_at__isnull=True), name="alert_unread_idx"
            ),
        ]

    def __str__(self) -> str:
        return self.title


class EmailDelivery(models.Model):
    """An email to send, written first (outbox), sent by the delivery step, marked sent after."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    # Unique by a constraint, not ``unique=True``: that would add a second, pattern-ops index for
    # LIKE on PostgreSQL, which nothing runs, to ~226,000 inserts a day at 1M accounts.
    key = models.CharField(max_length=200, help_text="What this email is; never twice.")
    alert = models.ForeignKey(Alert, null=True, blank=True, on_delete=models.CASCADE, related_name="emails")
    to_email = models.EmailField()
    # An alert's email is rendered from the alert when sent (``emails.render_alert_emails``):
    # its row holds no text or html, and its subject once sent.
    subject = models.CharField(max_length=300)
    text_body = models.TextField()
    html_body = models.TextField(blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "email deliveries"
        indexes = [
            # The delivery step: due rows still to send.
            # The claim's order, whole: a run's emails share one next_attempt_at, and with the
            # time alone a claim of 50 sorted every due row by id (0.5 s a claim at 226,000).
            models.Index(
                fields=["next_attempt_at", "id"],
                condition=Q(status__in=["pending", "sending"]),
                name="email_due_idx",
            ),
        ]
        constraints = [models.UniqueConstraint(fields=["key"], name="emaildelivery_key_unique")]

    def __str__(self) -> str:
        return f"{self.subject} → {self.to_email} ({self.status})"

    @property
    def message_id(self) -> str:
        """Stable across retries, so a receiver can drop the one unavoidable resend."""
        return f"<lifeline-{self.key.replace(':', '-')}@{settings.EMAIL_MESSAGE_ID_DOMAIN}>"


class Evaluation(models.Model):
    """One run of the playbooks step: as of when, and whether it looked at every account.

    An incremental run looks only at the accounts that changed since the previous evaluation
    (``playbooks.pipeline.changed_scope``), so it needs to know when that was.
    """

    as_of = models.DateTimeField()
    full = models.BooleanField()
    accounts = models.PositiveIntegerField(
        null=True, blank=True, help_text="Accounts looked at when not full; blank: every account."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-as_of", "-id"]
        indexes = [
            # The incremental run: the latest evaluation at or before its time.
            models.Index(fields=["as_of"], name="evaluation_as_of_idx"),
        ]

    def __str__(self) -> str:
        return f"{'full' if self.full else 'incremental'} evaluation as of {self.as_of:%Y-%m-%d %H:%M}"
