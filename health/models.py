"""Scorecards (versioned per segment), their measures, the score history and band overrides.

A scorecard version is immutable once it has been active: editing it makes a new draft, and
publishing the draft retires the old version, so every stored score points at the exact rules
that made it. Each score also stores the raw inputs of its components, so it can be reproduced.
"""

from collections.abc import Callable

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.models import Account

Band = Account.Band


class Scorecard(models.Model):
    """One version of the health rules for a segment ("" is the default for every other segment)."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired"

    name = models.CharField(max_length=255)
    segment = models.CharField(
        max_length=64, blank=True, help_text="Accounts of this segment; empty: the default scorecard."
    )
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DRAFT)
    red_below = models.DecimalField(max_digits=4, decimal_places=1, help_text="Red when the score is below.")
    green_from = models.DecimalField(max_digits=4, decimal_places=1, help_text="Green from this score.")
    stale_after_days = models.PositiveSmallIntegerField(
        default=14, help_text="A score whose newest input is older than this is flagged as stale."
    )
    derived_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    published_at = models.DateTimeField(null=True, blank=True)
    # The fixed part of each measure as a score's components show it ({"measure", "label", "group",
    # "metric", "params", "mapping", "weight"}), in order; written by the recompute that first
    # scores with this version. Stored once here, so each score stores only its own values.
    rules = models.JSONField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["segment", "-version"]
        constraints = [
            # Versions are numbered per segment; publish and "next version" look them up by it.
            models.UniqueConstraint(fields=["segment", "version"], name="scorecard_unique_segment_version"),
            # The recompute picks "the active scorecard of the account's segment": at most one.
            models.UniqueConstraint(
                fields=["segment"], condition=Q(status="active"), name="scorecard_one_active_per_segment"
            ),
            models.CheckConstraint(
                condition=Q(red_below__lte=models.F("green_from")), name="scorecard_bands_ordered"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version} ({self.segment or 'default'}, {self.status})"


class Measure(models.Model):
    """One component of a scorecard: a metric with parameters, a weight and a mapping to points."""

    scorecard = models.ForeignKey(Scorecard, on_delete=models.CASCADE, related_name="measures")
    key = models.SlugField(max_length=64)
    label = models.CharField(max_length=255)
    group = models.SlugField(
        max_length=32, default="usage", help_text="Dimension with its own sub-score, e.g. usage, support."
    )
    metric = models.CharField(max_length=64)
    params = models.JSONField(default=dict, blank=True)
    weight = models.DecimalField(max_digits=6, decimal_places=2)
    mapping = models.JSONField(help_text='{"type": "thresholds", "points": [[v, p], ...]} or linear.')
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["scorecard_id", "position", "id"]
        constraints = [
            # Components and "changes" are matched across scores by measure key.
            models.UniqueConstraint(fields=["scorecard", "key"], name="measure_unique_key"),
            models.CheckConstraint(condition=Q(weight__gt=0), name="measure_weight_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.metric})"


class HealthScore(models.Model):
    """One computed score of one account: the history, with everything needed to reproduce it."""

    id = models.BigAutoField(primary_key=True)
    # No index of its own: the unique (account, computed_at) index leads with the account.
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="health_scores", db_index=False
    )
    scorecard = models.ForeignKey(Scorecard, on_delete=models.PROTECT, related_name="scores")
    computed_at = models.DateTimeField()
    score = models.DecimalField(max_digits=4, decimal_places=1, null=True, blank=True)
    computed_band = models.CharField(max_length=8, choices=Band.choices, blank=True)
    band = models.CharField(max_length=8, choices=Band.choices, blank=True, help_text="After any override.")
    # Lean (the recompute): [[measure, raw, points, contribution, data_at], ...] in scorecard order,
    # the rest of each component being the scorecard's ``rules``; or in full (older rows):
    # [{"measure", "label", "group", "metric", "params", "mapping", "weight", "raw", "points",
    #   "contribution", "data_at"}]. "raw" is null for a missing measure. Read it through
    # ``full_components``, which gives the full form for both.
    components = models.JSONField(default=list)
    groups = models.JSONField(default=dict, help_text="Sub-score per measure group.")
    missing = models.JSONField(default=list)
    data_at = models.DateTimeField(null=True, blank=True, help_text="When the newest input was recorded.")
    override = models.ForeignKey(
        "Override", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-computed_at", "-id"]
        get_latest_by = "computed_at"
        constraints = [
            # One score per account per run (a rerun at the same time writes nothing twice); the
            # index also serves an account's history and "the previous score". On PostgreSQL it
            # also holds the score and band (migration 0006) for the triggers over the history.
            models.UniqueConstraint(fields=["account", "computed_at"], name="healthscore_unique_run"),
        ]
        indexes = [
            # Score drops: the peak score of every account within the last D days.
            models.Index(fields=["computed_at"], name="healthscore_computed_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id}: {self.score} {self.band} @ {self.computed_at:%Y-%m-%d %H:%M}"

    def full_components(self) -> list[dict]:
        """The components in full (rules and values), whichever form they were stored in."""
        return expand_components(self.components, lambda: scorecard_rules(self.scorecard))


COMPONENT_VALUES = ("measure", "raw", "points", "contribution", "data_at")  # a lean component's items


def scorecard_rules(scorecard: Scorecard) -> list[dict]:
    """The scorecard's stored ``rules``; built from its measures if never stored (one query)."""
    if scorecard.rules is not None:
        return scorecard.rules
    from health.scoring import rule_head, rules_of

    return [rule_head(rule) for rule in rules_of(scorecard)]


def expand_components(stored: list, rules: Callable[[], list[dict]]) -> list[dict]:
    """Full components from stored ones: lean ones joined to their measure's rules by key."""
    if not stored or isinstance(stored[0], dict):
        return stored
    heads = {head["measure"]: head for head in rules()}
    return [{**heads[values[0]], **dict(zip(COMPONENT_VALUES, values, strict=True))} for values in stored]


class Override(models.Model):
    """A band set by hand, with a reason, until it expires or is lifted."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="health_overrides")
    band = models.CharField(max_length=8, choices=Band.choices)
    reason = models.TextField()
    expires_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The account's band and its entry when the override was set, so that lifting it before any
    # recompute recorded it puts the account back where it was (not a new entry into the same
    # band: band_entered would fire again for the same stay).
    band_before = models.CharField(max_length=8, choices=Band.choices, blank=True)
    band_since_before = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The recompute: overrides not lifted and not yet expired, for all accounts.
            models.Index(
                fields=["expires_at"], name="override_live_idx", condition=Q(lifted_at__isnull=True)
            ),
            # The account page: an account's overrides, newest first.
            models.Index(fields=["account", "created_at"], name="override_account_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} → {self.band} until {self.expires_at:%Y-%m-%d}"


class RenewalRates(models.Model):
    """Renewal rate per band learned from past renewals and churns (band 90 days before), one row a day."""

    learned_on = models.DateField(unique=True)  # one snapshot a day; the forecast reads the newest
    lookback_days = models.PositiveSmallIntegerField()
    lead_days = models.PositiveSmallIntegerField()
    # {band: {"renewals": n, "churns": n, "rate": 0.93 or null when too few outcomes}}, band incl. "unscored"
    bands = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-learned_on"]
        verbose_name_plural = "renewal rates"

    def __str__(self) -> str:
        return f"Renewal rates learned on {self.learned_on}"


class RenewalForecast(models.Model):
    """One renewal's forecast as it stood 90 (or 30) days before its date, to grade once it is known."""

    class Lead(models.IntegerChoices):
        DAYS_90 = 90, "90 days before"
        DAYS_30 = 30, "30 days before"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="renewal_forecasts")
    renewal_date = models.DateField()
    lead = models.PositiveSmallIntegerField(choices=Lead.choices)
    taken_on = models.DateField()
    band = models.CharField(max_length=8, help_text='The band then, or "unscored".')
    rate = models.DecimalField(max_digits=5, decimal_places=4)
    arr = models.DecimalField("ARR", max_digits=14, decimal_places=2)

    class Meta:
        ordering = ["renewal_date", "account_id", "-lead"]
        constraints = [
            # The daily snapshot inserts with ignore_conflicts: one forecast per renewal and lead.
            models.UniqueConstraint(
                fields=["account", "renewal_date", "lead"], name="renewalforecast_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} renewing {self.renewal_date}: {self.band} {self.rate} ({self.lead} days)"
