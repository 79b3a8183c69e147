"""Scores from measures, and the recompute step of the pipeline (API.md, Health).

Score = Σ weight * points / Σ weight over the measures that have a raw value, rounded to one
decimal (half up); band = red below ``red_below``, green from ``green_from``, else yellow. Each
account is scored by the active scorecard of its segment, else the default one; an override
that has not expired sets the band. The recompute reads every metric once for all accounts, so
its number of queries does not depend on the number of accounts.
"""

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import transaction
from django.db.models import Max, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import NullIf
from django.utils import timezone

from accounts.locking import step_lock
from accounts.models import Account
from health.metrics import METRICS, MetricCache, Reading, compute
from health.models import HealthScore, Override, Scorecard

ONE_DECIMAL = Decimal("0.1")
HUNDREDTH = Decimal("0.01")
HUNDRED = Decimal(100)
UNSCORED = "unscored"


# --- one account, one scorecard ----------------------------------------------------------------


@dataclass(frozen=True)
class MeasureRule:
    """A measure as the scoring reads it (from the database, or from a stored score)."""

    key: str
    label: str
    group: str
    metric: str
    params: dict
    weight: Decimal
    mapping: dict

    @property
    def spec(self) -> tuple[str, str]:
        """Measures with the same metric and parameters share one query."""
        return self.metric, json.dumps(self.params, sort_keys=True)


@dataclass(frozen=True)
class Component:
    measure: str
    label: str
    group: str
    metric: str
    params: dict
    mapping: dict
    weight: Decimal
    raw: Decimal | None
    points: Decimal | None
    contribution: Decimal | None  # weight * points / Σ weight of the measures with data
    data_at: dt.datetime | None

    def as_json(self) -> dict[str, Any]:
        """The stored form: raw inputs and rules, enough to reproduce the score."""
        return {
            "measure": self.measure,
            "label": self.label,
            "group": self.group,
            "metric": self.metric,
            "params": self.params,
            "mapping": self.mapping,
            "weight": _json_number(self.weight),
            "raw": _json_number(self.raw),
            "points": _json_number(self.points, HUNDREDTH),
            "contribution": _json_number(self.contribution, HUNDREDTH),
            "data_at": self.data_at.isoformat() if self.data_at else None,
        }


@dataclass(frozen=True)
class Scored:
    score: Decimal | None
    components: list[Component]
    groups: dict[str, Decimal | None]
    missing: list[str]
    data_at: dt.datetime | None


def _json_number(value: Decimal | None, places: Decimal | None = None) -> int | float | None:
    if value is None:
        return None
    if places is not None:
        value = value.quantize(places, rounding=ROUND_HALF_UP)
    return int(value) if value == value.to_integral_value() else float(value)


def _decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def points_for(mapping: Mapping[str, Any], raw: Decimal) -> Decimal:
    """Points (0-100) of a raw value under a thresholds or linear mapping, exactly as API.md says."""
    if mapping["type"] == "thresholds":
        pairs = mapping["points"]
        points = pairs[0][1]  # below every value: the first pair's points
        for value, value_points in pairs:
            if _decimal(value) <= raw:
                points = value_points
            else:
                break
        return _decimal(points)
    zero_at, full_at = _decimal(mapping["zero_at"]), _decimal(mapping["full_at"])
    share = (raw - zero_at) / (full_at - zero_at)
    return HUNDRED * min(max(share, Decimal(0)), Decimal(1))


def weighted_score(parts: Iterable[tuple[Decimal, Decimal]]) -> Decimal | None:
    """Σ weight * points / Σ weight, rounded to one decimal; None when nothing has data."""
    parts = list(parts)
    total_weight = sum((weight for weight, _ in parts), Decimal(0))
    if not total_weight:
        return None
    total = sum((weight * points for weight, points in parts), Decimal(0))
    return (total / total_weight).quantize(ONE_DECIMAL, rounding=ROUND_HALF_UP)


def score_measures(rules: Sequence[MeasureRule], readings: Mapping[str, Reading | None]) -> Scored:
    """Score one account from its readings by measure key; measures without one are missing."""
    with_data = [(rule, readings[rule.key]) for rule in rules if readings.get(rule.key) is not None]
    total_weight = sum((rule.weight for rule, _ in with_data), Decimal(0))
    components, groups = [], {}
    for rule in rules:
        reading = readings.get(rule.key)
        points = points_for(rule.mapping, reading.value) if reading is not None else None
        components.append(
            Component(
                measure=rule.key,
                label=rule.label,
                group=rule.group,
                metric=rule.metric,
                params=rule.params,
                mapping=rule.mapping,
                weight=rule.weight,
                raw=reading.value if reading is not None else None,
                points=points,
                contribution=rule.weight * points / total_weight if points is not None else None,
                data_at=reading.data_at if reading is not None else None,
            )
        )
    for group in dict.fromkeys(rule.group for rule in rules):
        groups[group] = weighted_score(
            (c.weight, c.points) for c in components if c.group == group and c.points is not None
        )
    dates = [c.data_at for c in components if c.data_at is not None]
    return Scored(
        score=weighted_score((rule.weight, points_for(rule.mapping, r.value)) for rule, r in with_data),
        components=components,
        groups=groups,
        missing=[c.measure for c in components if c.raw is None],
        data_at=max(dates) if dates else None,
    )


def band_for(score: Decimal | None, *, red_below: Decimal, green_from: Decimal) -> str | None:
    if score is None:
        return None
    if score < red_below:
        return Account.Band.RED.value
    if score >= green_from:
        return Account.Band.GREEN.value
    return Account.Band.YELLOW.value


def rules_of(scorecard: Scorecard) -> list[MeasureRule]:
    """The scorecard's measures in order (prefetch ``measures`` when looping)."""
    return [
        MeasureRule(m.key, m.label, m.group, m.metric, m.params, m.weight, m.mapping)
        for m in scorecard.measures.all()
    ]


def reproduce_score(score: HealthScore) -> Decimal | None:
    """Recompute a stored score from the raw inputs and rules it stored (the audit of a score)."""
    parts = [
        (_decimal(c["weight"]), points_for(c["mapping"], _decimal(c["raw"])))
        for c in score.components
        if c["raw"] is not None
    ]
    return weighted_score(parts)


def is_stale(*, data_at: dt.datetime | None, computed_at: dt.datetime, now: dt.datetime, days: int) -> bool:
    """A score is stale when its newest input, or the score itself, is older than the limit."""
    limit = dt.timedelta(days=days)
    return data_at is None or now - data_at > limit or now - computed_at > limit


# --- many accounts -----------------------------------------------------------------------------


def scorecard_picker(active: Iterable[Scorecard]) -> Callable[[str], Scorecard | None]:
    """The active scorecard of a segment (matched case-insensitively), else the default one."""
    by_segment = {s.segment.strip().lower(): s for s in active}
    default = by_segment.get("")
    return lambda segment: by_segment.get((segment or "").strip().lower(), default)


def compute_scores(
    *,
    as_of: dt.datetime,
    scope: QuerySet[Account],
    assigned: Mapping[int, Scorecard],
    cache: MetricCache | None = None,
) -> dict[int, Scored]:
    """Score each assigned account with its scorecard as of ``as_of``; one query per distinct metric.

    Pass the same ``cache`` to several calls over the same ``as_of`` and ``scope`` to read each
    metric once.
    """
    cache = cache or MetricCache()
    rules = {s.pk: rules_of(s) for s in {s.pk: s for s in assigned.values()}.values()}
    specs = {rule.spec: rule for scorecard_rules in rules.values() for rule in scorecard_rules}
    readings = {}
    for spec, rule in specs.items():
        if ("readings", spec) not in cache.values:
            cache.values["readings", spec] = compute(
                rule.metric, rule.params, as_of=as_of, accounts=scope, cache=cache
            )
        readings[spec] = cache.values["readings", spec]
    results = {}
    for account_id, scorecard in assigned.items():
        values: dict[str, Reading | None] = {}
        for rule in rules[scorecard.pk]:
            reading = readings[rule.spec].get(account_id)
            empty = METRICS[rule.metric].empty
            values[rule.key] = reading or (Reading(empty, None) if empty is not None else None)
        results[account_id] = score_measures(rules[scorecard.pk], values)
    return results


def live_overrides(*, now: dt.datetime, account_ids: Iterable[int] | None = None) -> dict[int, Override]:
    """The newest override of each account that was set by ``now``, not lifted and not expired."""
    overrides = Override.objects.filter(lifted_at__isnull=True, expires_at__gt=now, created_at__lte=now)
    if account_ids is not None:
        overrides = overrides.filter(account_id__in=list(account_ids))
    live: dict[int, Override] = {}
    for override in overrides.order_by("account_id", "-created_at", "-id"):
        live.setdefault(override.account_id, override)
    return live


@dataclass(frozen=True)
class BandChange:
    """An account entered a band (after overrides); ``from_band`` None: it had no band before."""

    account_id: int
    from_band: str | None
    to_band: str | None


@dataclass(frozen=True)
class ScoreChange:
    account_id: int
    score_before: Decimal | None
    score_now: Decimal | None
    band_before: str | None
    band_now: str | None


@dataclass(frozen=True)
class ScoreDrop:
    account_id: int
    peak: Decimal  # the highest score within the last D days
    score: Decimal  # the latest score
    drop: Decimal


@dataclass(frozen=True)
class HealthChanges:
    """What one recompute did, for the playbooks step."""

    computed_at: dt.datetime
    accounts: int  # accounts scored (a row written each)
    bands: dict[str, int] = field(default_factory=dict)  # accounts per band, and "unscored"
    band_changes: list[BandChange] = field(default_factory=list)
    scores: list[ScoreChange] = field(default_factory=list)

    def counts(self) -> dict[str, Any]:
        """A small summary for logs and task results."""
        return {"accounts": self.accounts, "bands": self.bands, "band_changes": len(self.band_changes)}

    def entered(self, band: str) -> list[BandChange]:
        """Accounts that entered ``band`` in this run."""
        return [change for change in self.band_changes if change.to_band == band]

    def drops_since_previous(self, min_drop: Decimal | float) -> list[ScoreChange]:
        """Accounts whose score fell by at least ``min_drop`` since their previous score."""
        threshold = _decimal(min_drop)
        return [
            s
            for s in self.scores
            if s.score_before is not None
            and s.score_now is not None
            and s.score_before - s.score_now >= threshold
        ]


def score_drops(
    *, now: dt.datetime, min_drop: Decimal | float, days: int, account_ids: Iterable[int] | None = None
) -> list[ScoreDrop]:
    """Accounts whose latest score is at least ``min_drop`` below their peak within ``[now - days, now]``.

    One query over the score history, whatever the number of accounts.
    """
    history = HealthScore.objects.filter(
        account_id=OuterRef("pk"), computed_at__lte=now, score__isnull=False
    ).order_by()
    peak = (
        history.filter(computed_at__gte=now - dt.timedelta(days=days))
        .values("account_id")
        .annotate(peak=Max("score"))
        .values("peak")
    )
    latest = history.order_by("-computed_at").values("score")[:1]
    accounts = (
        Account.objects.all() if account_ids is None else Account.objects.filter(pk__in=list(account_ids))
    )
    rows = (
        accounts.order_by("pk")
        .annotate(peak=Subquery(peak), latest=Subquery(latest))
        .filter(peak__isnull=False, latest__isnull=False)
        .values_list("pk", "peak", "latest")
    )
    threshold = _decimal(min_drop)
    return [
        ScoreDrop(pk, peak, latest, peak - latest) for pk, peak, latest in rows if peak - latest >= threshold
    ]


def recompute_health(*, now: dt.datetime) -> HealthChanges:
    """Score every active account as of ``now``, keep the history, update the account rows.

    Idempotent: a second run at the same ``now`` rewrites the same rows. A handful of queries:
    scorecards, accounts, one per distinct metric, overrides, one insert, one update.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    with transaction.atomic():
        pick = scorecard_picker(
            Scorecard.objects.filter(status=Scorecard.Status.ACTIVE).prefetch_related("measures")
        )
        scope = Account.objects.filter(status=Account.Status.ACTIVE)
        before = {}
        assigned = {}
        for pk, segment, score, band in scope.order_by("pk").values_list(
            "pk", "segment", "health_score", "health_band"
        ):
            scorecard = pick(segment)
            if scorecard is not None:
                assigned[pk] = scorecard
                before[pk] = (score, band)
        results = compute_scores(as_of=now, scope=scope, assigned=assigned)
        overrides = live_overrides(now=now)
        rows, changes, band_changes, bands = [], [], [], Counter()
        for account_id, scored in results.items():
            scorecard = assigned[account_id]
            computed = band_for(scored.score, red_below=scorecard.red_below, green_from=scorecard.green_from)
            override = overrides.get(account_id)
            band = override.band if override is not None else computed
            rows.append(
                HealthScore(
                    account_id=account_id,
                    scorecard=scorecard,
                    computed_at=now,
                    score=scored.score,
                    computed_band=computed or "",
                    band=band or "",
                    components=[c.as_json() for c in scored.components],
                    groups={g: _json_number(s) for g, s in scored.groups.items()},
                    missing=scored.missing,
                    data_at=scored.data_at,
                    override=override,
                )
            )
            score_before, band_before = before[account_id]
            bands[band or UNSCORED] += 1
            changes.append(ScoreChange(account_id, score_before, scored.score, band_before, band))
            if band != band_before:
                band_changes.append(BandChange(account_id, band_before, band))
        HealthScore.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["account", "computed_at"],
            update_fields=[
                "scorecard",
                "score",
                "computed_band",
                "band",
                "components",
                "groups",
                "missing",
                "data_at",
                "override",
            ],
        )
        this_run = HealthScore.objects.filter(account_id=OuterRef("pk"), computed_at=now)
        Account.objects.filter(
            pk__in=HealthScore.objects.filter(computed_at=now).values("account_id")
        ).update(
            health_score=Subquery(this_run.values("score")[:1]),
            health_band=NullIf(Subquery(this_run.values("band")[:1]), Value("")),
        )
    return HealthChanges(
        computed_at=now, accounts=len(rows), bands=dict(bands), band_changes=band_changes, scores=changes
    )


RECOMPUTE_STEP = "health.recompute"


def run_recompute_step(*, now: dt.datetime | None = None) -> HealthChanges | None:
    """The pipeline's health step under its lock; None when another run holds it."""
    with step_lock(RECOMPUTE_STEP) as acquired:
        if not acquired:
            return None
        return recompute_health(now=now or timezone.now())


def backfill_history(*, until: dt.datetime, days: int, every_days: int) -> list[dt.datetime]:
    """Score every active account as of past midnights (UTC) from ``until - days``, oldest first.

    Uses only what was known at each date (the metrics are as-of), so a new installation's charts
    show the last months at once. Dates that already have scores are left alone; returns the
    dates scored.
    """
    last = until.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    dates = [last - dt.timedelta(days=d) for d in range(days, 0, -every_days)]
    done = set(
        HealthScore.objects.filter(computed_at__in=dates).values_list("computed_at", flat=True).distinct()
    )
    todo = [when for when in dates if when not in done]
    for when in todo:
        recompute_health(now=when)
    return todo


# --- preview of a draft ------------------------------------------------------------------------


@dataclass(frozen=True)
class PreviewChange:
    account_id: int
    name: str
    score_now: Decimal | None
    band_now: str | None
    score_with_draft: Decimal | None
    band_with_draft: str | None


@dataclass(frozen=True)
class Preview:
    scorecard_id: int
    accounts: int
    bands_now: dict[str, int]
    bands_with_draft: dict[str, int]
    changes: list[PreviewChange]


def preview_scorecard(
    *, scorecard: Scorecard, now: dt.datetime, accounts: QuerySet[Account] | None = None
) -> Preview:
    """The band distribution now vs with this scorecard, for the accounts it would score; writes nothing.

    "Now" is what the active scorecards give at ``now`` (before overrides), so both sides read
    the same data. ``accounts`` limits it to the caller's scope (the API passes
    ``visible_accounts(user)``), so nobody sees the names of accounts outside it.
    """
    active = list(Scorecard.objects.filter(status=Scorecard.Status.ACTIVE).prefetch_related("measures"))
    pick = scorecard_picker(active)
    own_segments = {s.segment.strip().lower() for s in active if s.segment}
    target = scorecard.segment.strip().lower()
    scope = (Account.objects if accounts is None else accounts).filter(status=Account.Status.ACTIVE)
    names, current, draft = {}, {}, {}
    for pk, segment, name in scope.order_by("name", "pk").values_list("pk", "segment", "name"):
        segment = (segment or "").strip().lower()
        if (target and segment != target) or (not target and segment in own_segments):
            continue
        names[pk] = name
        draft[pk] = scorecard
        if (existing := pick(segment)) is not None:
            current[pk] = existing
    cache = MetricCache()
    scored_now = compute_scores(as_of=now, scope=scope, assigned=current, cache=cache)
    scored_draft = compute_scores(as_of=now, scope=scope, assigned=draft, cache=cache)
    bands_now, bands_draft, changes = Counter(), Counter(), []
    for pk, name in names.items():
        score_now = scored_now[pk].score if pk in scored_now else None
        band_now = (
            band_for(score_now, red_below=current[pk].red_below, green_from=current[pk].green_from)
            if pk in current
            else None
        )
        score_draft = scored_draft[pk].score
        band_draft = band_for(score_draft, red_below=scorecard.red_below, green_from=scorecard.green_from)
        bands_now[band_now or UNSCORED] += 1
        bands_draft[band_draft or UNSCORED] += 1
        if band_now != band_draft:
            changes.append(PreviewChange(pk, name, score_now, band_now, score_draft, band_draft))
    return Preview(
        scorecard_id=scorecard.pk,
        accounts=len(names),
        bands_now=dict(bands_now),
        bands_with_draft=dict(bands_draft),
        changes=changes,
    )
