"""Customer value: the settings that define it and each account's latest computed figures.

``AccountValue`` is written by the insights pipeline step (``insights.recompute``), which runs
after journeys and before health so that scorecards and playbooks read this run's figures.
"""

import datetime as dt
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from accounts.models import Account

DEFAULT_VALUE_EVENTS = ["purchase", "order", "order_placed", "invoice"]


class RfmSegment(models.TextChoices):
    CHAMPIONS = "champions", "Champions"
    LOYAL = "loyal", "Loyal"
    POTENTIAL_LOYALISTS = "potential_loyalists", "Potential loyalists"
    NEW = "new", "New"
    AT_RISK = "at_risk", "At risk"
    CANT_LOSE = "cant_lose", "Can't lose them"
    HIBERNATING = "hibernating", "Hibernating"
    LOST = "lost", "Lost"


class Lifecycle(models.TextChoices):
    NEW = "new", "New (first purchase)"
    REPEAT = "repeat", "Repeat (second purchase)"
    REGULAR = "regular", "Regular"
    REACTIVATED = "reactivated", "Reactivated"
    LAPSED = "lapsed", "Lapsed"


def _margin_map_errors(value) -> None:
    if not isinstance(value, dict):
        raise ValidationError("Must be a JSON object of segment → margin between 0 and 1.")
    for segment, margin in value.items():
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 <= margin <= 1:
            raise ValidationError(f"The margin of {segment!r} must be a number between 0 and 1.")


def _event_names_errors(value) -> None:
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(n, str) and 0 < len(n.strip()) <= 100 for n in value)
    ):
        raise ValidationError("Must be a non-empty JSON list of event names.")


class ValueSettings(models.Model):
    """What counts as value and how it is measured; one row (pk 1), edited in the admin."""

    value_events = models.JSONField(
        default=list,
        validators=[_event_names_errors],
        help_text='Event names that carry a value, e.g. ["purchase", "order", "invoice"].',
    )
    default_gross_margin = models.DecimalField(
        max_digits=4,
        decimal_places=3,
        default=Decimal("0.700"),
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text="Share of revenue kept (0 to 1) for segments without their own margin.",
    )
    segment_margins = models.JSONField(
        default=dict,
        blank=True,
        validators=[_margin_map_errors],
        help_text='e.g. {"enterprise": 0.8, "smb": 0.6}',
    )
    window_days = models.PositiveIntegerField(
        default=365,
        validators=[MinValueValidator(7), MaxValueValidator(3650)],
        help_text="RFM and CLV read the purchases of this many days before now.",
    )
    quiet_days = models.PositiveIntegerField(
        default=90,
        validators=[MinValueValidator(1), MaxValueValidator(3650)],
        help_text="A gap this long makes a customer lapsed; buying again after it, reactivated.",
    )
    max_lifetime_years = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal("10.00"),
        validators=[MinValueValidator(Decimal("0.1"))],
        help_text="Cap on the expected lifetime (1 / churn rate); used when a segment has no churn.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "value settings"
        verbose_name_plural = "value settings"
        constraints = [
            # One row: everything reads pk 1.
            models.CheckConstraint(condition=models.Q(pk=1), name="valuesettings_single_row"),
        ]

    def __str__(self) -> str:
        return "Value settings"

    def margin_for(self, segment: str) -> Decimal:
        margin = (self.segment_margins or {}).get(segment)
        return Decimal(str(margin)) if margin is not None else self.default_gross_margin


class AccountValue(models.Model):
    """One account's latest value figures: CLV and its inputs, RFM scores and segment, lifecycle."""

    account = models.OneToOneField(Account, primary_key=True, on_delete=models.CASCADE, related_name="value")
    # The run that last changed these figures: a run rewrites only the rows whose figures differ,
    # so an account whose purchases did not move keeps the time they were computed.
    computed_at = models.DateTimeField()
    # Purchase history (every value-carrying event before computed_at, the run that wrote them).
    purchases = models.PositiveIntegerField(default=0)
    first_purchase_at = models.DateTimeField(null=True, blank=True)
    second_purchase_at = models.DateTimeField(null=True, blank=True)
    last_purchase_at = models.DateTimeField(null=True, blank=True)
    # CLV inputs over the window.
    window_purchases = models.PositiveIntegerField(default=0)
    window_value = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    average_order_value = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    purchases_per_year = models.DecimalField(max_digits=12, decimal_places=4, default=0)
    gross_margin = models.DecimalField(max_digits=4, decimal_places=3)
    churn_rate = models.DecimalField(max_digits=6, decimal_places=4, null=True, blank=True)
    expected_lifetime_years = models.DecimalField(max_digits=7, decimal_places=2)
    clv = models.DecimalField("CLV", max_digits=18, decimal_places=2, null=True, blank=True)
    # RFM over the window; null for accounts without a purchase in it. The recency is not stored:
    # it moves every day for every buyer (``recency_days`` below derives it).
    r_score = models.PositiveSmallIntegerField(null=True, blank=True)
    f_score = models.PositiveSmallIntegerField(null=True, blank=True)
    m_score = models.PositiveSmallIntegerField(null=True, blank=True)
    rfm_segment = models.CharField(max_length=20, choices=RfmSegment.choices, blank=True)
    rfm_segment_since = models.DateTimeField(null=True, blank=True)
    previous_rfm_segment = models.CharField(max_length=20, choices=RfmSegment.choices, blank=True)
    lifecycle = models.CharField(max_length=12, choices=Lifecycle.choices, blank=True)

    class Meta:
        ordering = ["account_id"]
        verbose_name = "account value"
        indexes = [
            # The segment filter (equality). A ``db_index`` would add a second, pattern-ops index
            # for LIKE on PostgreSQL, which nothing runs, to every rewritten row.
            models.Index(fields=["rfm_segment"], name="accountvalue_rfm_segment_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id}: CLV {self.clv} {self.rfm_segment or '-'}"

    @property
    def recency_days(self) -> int | None:
        """Whole days since the last purchase, as of now; None without a purchase in the window.

        Derived when read, so that a daily run need not rewrite every buyer's row only because
        a day went by (the figures it ranks on, ``r_score``, are the last run's).
        """
        if not self.window_purchases or self.last_purchase_at is None:
            return None
        return max((timezone.now() - self.last_purchase_at) // dt.timedelta(days=1), 0)

    @property
    def rfm_score(self) -> int | None:
        if self.r_score is None:
            return None
        return self.r_score + self.f_score + self.m_score


class PlaybookValueFilter(models.Model):
    """A value filter on a playbook: only accounts whose latest CLV is at least ``min_clv``.

    Kept here rather than on ``playbooks.Playbook`` so the insights app owns its migrations.
    """

    playbook = models.OneToOneField(
        "playbooks.Playbook", primary_key=True, on_delete=models.CASCADE, related_name="value_filter"
    )
    min_clv = models.DecimalField(
        "minimum CLV", max_digits=18, decimal_places=2, validators=[MinValueValidator(0)]
    )

    class Meta:
        verbose_name = "value filter"

    def __str__(self) -> str:
        return f"CLV ≥ {self.min_clv}"
