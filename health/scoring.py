"""Scores from measures, and the recompute step of the pipeline (API.md, Health).

Score = Σ weight * points / Σ weight over the measures that have a raw value, rounded to one
decimal (half up); band = red below ``red_below``, green from ``green_from``, else yellow. Each
account is scored by the active scorecard of its segment, else the default one; an override
that has not expired sets the band. The recompute reads every metric once for all accounts, so
its number of queries does not depend on the number of accounts.
"""

import datetime as dt
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.db.models import Case, F, Max, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce, NullIf
from django.db.models.lookups import Exact
from django.utils import timezone

from accounts.locking import step_lock
from accounts.lookups import any_of
from accounts.models import Account, Event, SurveyResponse, Ticket, Touchpoint
from accounts.shares import exceeds_share_of_active
from health.band_entry import set_entries_from_history
from health.metrics import METRICS, MetricCache, Reading, compute, streams
from health.models import HealthScore, Override, Scorecard

logger = logging.getLogger(__name__)

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


def rule_head(rule: MeasureRule) -> dict[str, Any]:
    """The fixed part of a measure's stored component (the same for every score of the version)."""
    return {
        "measure": rule.key,
        "label": rule.label,
        "group": rule.group,
        "metric": rule.metric,
        "params": rule.params,
        "mapping": rule.mapping,
        "weight": _json_number(rule.weight),
    }


def reproduce_score(score: HealthScore) -> Decimal | None:
    """Recompute a stored score from the raw inputs and rules it stored (the audit of a score)."""
    parts = [
        (_decimal(c["weight"]), points_for(c["mapping"], _decimal(c["raw"])))
        for c in score.full_components()
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
        readings[spec] = cache.get(
            ("readings", spec),
            lambda rule=rule: compute(rule.metric, rule.params, as_of=as_of, accounts=scope, cache=cache),
        )
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


@dataclass(frozen=True, slots=True)
class BandChange:
    """An account entered a band (after overrides); ``from_band`` None: it had no band before."""

    account_id: int
    from_band: str | None
    to_band: str | None


@dataclass(frozen=True, slots=True)
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
    scores: list[ScoreChange] = field(default_factory=list)  # accounts whose score or band changed
    full: bool = True  # every active account rescored, not only the changed ones

    def counts(self) -> dict[str, Any]:
        """A small summary for logs and task results."""
        return {
            "accounts": self.accounts,
            "bands": self.bands,
            "band_changes": len(self.band_changes),
            "full": self.full,
        }

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


HISTORY_COLUMNS = (
    "account_id",
    "scorecard_id",
    "score",
    "computed_band",
    "band",
    "components",
    "groups",
    "missing",
    "data_at",
    "override_id",
)
JSON_COLUMNS = ("components", "groups", "missing")  # written as JSON text by _score_row
WRITE_BATCH = 5000  # rows scored in Python before they are written (memory stays flat)


class _Readings:
    """One metric's readings in ascending account id, consumed as the accounts go by."""

    __slots__ = ("_next", "_rows")

    def __init__(self, rows: Iterable[tuple[int, Reading]]) -> None:
        self._rows = iter(rows)
        self._next = next(self._rows, None)

    def of(self, account_id: int) -> Reading | None:
        """The reading of ``account_id``; accounts must be asked for in ascending order."""
        while self._next is not None and self._next[0] < account_id:
            self._next = next(self._rows, None)
        if self._next is not None and self._next[0] == account_id:
            return self._next[1]
        return None


def _json_text(value: int | float | None) -> str:
    """``json.dumps`` of a number or None, without its per-call overhead."""
    if value is None:
        return "null"
    return str(value) if isinstance(value, int) else float.__repr__(value)


MEMO_LIMIT = 4096  # values remembered per measure: raws repeat across accounts (counts, days)


class _CompiledRule:
    """A measure with its mapping's numbers converted once, for scoring many accounts.

    Points and the JSON text of a raw value and its points are remembered per raw value (and a
    contribution's text per points and total weight), up to ``MEMO_LIMIT`` values each: most
    accounts share a handful of raw values, so most rows cost a dictionary lookup, and memory
    stays bounded whatever the number of accounts. Equal values give equal texts, so the result
    is what computing each row would give.
    """

    __slots__ = (
        "_by_raw",
        "_contributions",
        "empty",
        "first_points",
        "group_key",
        "head",
        "rule",
        "span",
        "thresholds",
        "weight",
        "zero_at",
    )

    def __init__(self, rule: MeasureRule) -> None:
        self.rule = rule
        self.weight = rule.weight
        empty = METRICS[rule.metric].empty
        self.empty = Reading(empty, None) if empty is not None else None
        self.head = f"[{json.dumps(rule.key)}, "  # a lean component: the rest is the scorecard's rules
        self.group_key = json.dumps(rule.group)
        self._by_raw: dict[Decimal, tuple[Decimal, str]] = {}
        self._contributions: dict[tuple[Decimal, Decimal], str] = {}
        mapping = rule.mapping
        if mapping["type"] == "thresholds":
            self.thresholds = [(_decimal(v), _decimal(p)) for v, p in mapping["points"]]
            self.first_points = _decimal(mapping["points"][0][1])
        else:
            self.thresholds = None
            self.zero_at = _decimal(mapping["zero_at"])
            self.span = _decimal(mapping["full_at"]) - self.zero_at

    def points(self, raw: Decimal) -> Decimal:
        """``points_for`` with the mapping already converted (the same arithmetic)."""
        if self.thresholds is not None:
            points = self.first_points
            for value, value_points in self.thresholds:
                if value <= raw:
                    points = value_points
                else:
                    break
            return points
        return HUNDRED * min(max((raw - self.zero_at) / self.span, ZERO), ONE)

    def scored(self, raw: Decimal) -> tuple[Decimal, str]:
        """The points of ``raw`` and the JSON text ``raw, points`` of a lean component."""
        known = self._by_raw.get(raw)
        if known is None:
            points = self.points(raw)
            text = f"{_json_text(_json_number(raw))}, {_json_text(_json_number(points, HUNDREDTH))}"
            known = (points, text)
            if len(self._by_raw) < MEMO_LIMIT:
                self._by_raw[raw] = known
        return known

    def contribution(self, points: Decimal, total_weight: Decimal) -> str:
        """The JSON text of weight * points / Σ weight, to the hundredth."""
        key = (points, total_weight)
        text = self._contributions.get(key)
        if text is None:
            text = _json_text(_json_number(self.weight * points / total_weight, HUNDREDTH))
            if len(self._contributions) < MEMO_LIMIT:
                self._contributions[key] = text
        return text


ZERO, ONE = Decimal(0), Decimal(1)


def _rounded_share(total: Decimal, weight: Decimal) -> Decimal:
    return (total / weight).quantize(ONE_DECIMAL, rounding=ROUND_HALF_UP)


def _score_row(
    compiled: Sequence[_CompiledRule], readings: Sequence[Reading | None]
) -> tuple[Decimal | None, str, str, str, dt.datetime | None]:
    """``score_measures`` for the recompute, straight to the stored JSON texts (lean components).

    The same sums in the same order as ``score_measures`` (and ``weighted_score``), so the
    scores are identical; a test compares the two, components expanded with the rules.
    """
    total_weight, total = ZERO, ZERO
    group_sums: dict[str, list[Decimal]] = {}
    scored = []
    for c, r in zip(compiled, readings, strict=True):
        group = group_sums.get(c.group_key)
        if group is None:
            group = group_sums[c.group_key] = [ZERO, ZERO]
        if r is None:
            scored.append(None)
            continue
        points, text = c.scored(r.value)
        scored.append((points, text))
        weighted = c.weight * points
        total_weight += c.weight
        total += weighted
        group[0] += c.weight
        group[1] += weighted
    score = _rounded_share(total, total_weight) if total_weight else None
    parts, missing, newest = [], [], None
    for c, r, known in zip(compiled, readings, scored, strict=True):
        if known is None:
            missing.append(c.rule.key)
            parts.append(f"{c.head}null, null, null, null]")
            continue
        at = r.data_at
        if at is not None and (newest is None or at > newest):
            newest = at
        at_text = f'"{at.isoformat()}"' if at is not None else "null"  # isoformat needs no escaping
        parts.append(f"{c.head}{known[1]}, {c.contribution(known[0], total_weight)}, {at_text}]")
    groups = ", ".join(
        f"{g}: {_json_text(_json_number(_rounded_share(t, w)) if w else None)}"
        for g, (w, t) in group_sums.items()
    )
    return score, f"[{', '.join(parts)}]", f"{{{groups}}}", json.dumps(missing), newest


def _store_rules(active: Iterable[Scorecard], rules: Mapping[int, list[MeasureRule]]) -> None:
    """Store each scorecard's rules once (the lean components this run writes refer to them).

    Rewritten only when they differ (a version's measures do not change once it is active).
    """
    for scorecard in active:
        heads = json.loads(json.dumps([rule_head(rule) for rule in rules[scorecard.pk]]))
        if scorecard.rules != heads:
            Scorecard.objects.filter(pk=scorecard.pk).update(rules=heads)
            scorecard.rules = heads


class _OrmWriter:
    """Not PostgreSQL (SQLite for ``make run``): bulk inserts, then a correlated update."""

    def __init__(self, now: dt.datetime, scope: QuerySet[Account]) -> None:
        self.now = now

    def write(self, rows: list[tuple]) -> None:
        HealthScore.objects.bulk_create(
            [HealthScore(**self._fields(row), computed_at=self.now) for row in rows],
            update_conflicts=True,
            unique_fields=["account", "computed_at"],
            update_fields=[c.removesuffix("_id") for c in HISTORY_COLUMNS if c != "account_id"],
        )

    @staticmethod
    def _fields(row: tuple) -> dict:
        """The row's columns, with the JSON texts that ``_score_row`` wrote decoded."""
        fields = dict(zip(HISTORY_COLUMNS, row, strict=True))
        for name in JSON_COLUMNS:
            fields[name] = json.loads(fields[name])
        return fields

    def finish(self) -> None:
        this_run = HealthScore.objects.filter(account_id=OuterRef("pk"), computed_at=self.now)
        band = Subquery(this_run.values("band")[:1])
        Account.objects.filter(
            pk__in=HealthScore.objects.filter(computed_at=self.now).values("account_id")
        ).update(
            health_score=Subquery(this_run.values("score")[:1]),
            health_band=NullIf(band, Value("")),
            # Entered now when the band changes (none when unscored); kept otherwise. The old
            # band is read here; the history's unscored band is "".
            health_band_since=Case(
                When(Exact(band, Value("")), then=Value(None)),
                When(
                    Exact(Coalesce(F("health_band"), Value("")), band),
                    health_band_since__isnull=False,
                    then=F("health_band_since"),
                ),
                default=Value(self.now),
            ),
        )


def recompute_health(*, now: dt.datetime, accounts: QuerySet[Account] | None = None) -> HealthChanges:
    """Score every active account (of ``accounts``, default all) as of ``now``; keep the history.

    Idempotent: a second run at the same ``now`` rewrites the same rows. On PostgreSQL two
    statements score, then store and update every account (``health.sql_scoring``): no reading
    leaves the database. Elsewhere (SQLite) every metric is streamed by account id and merged
    here, and the rows are written in batches. Either way a handful of queries whatever the
    number of accounts, and memory does not grow with them.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    postgres = connection.vendor == "postgresql"
    active = list(Scorecard.objects.filter(status=Scorecard.Status.ACTIVE).prefetch_related("measures"))
    pick = scorecard_picker(active)
    rules = {s.pk: rules_of(s) for s in active}
    # Before the run's transaction: the scorecards' rows are then not locked while it runs (the
    # rules depend only on the version's measures, so storing them early is harmless).
    _store_rules(active, rules)
    with transaction.atomic():
        if postgres:
            with connection.cursor() as cursor:
                # Many short aggregates: JIT compiling them costs more than it saves; the
                # streamed (server-side) cursors must be planned for all rows, not the first.
                cursor.execute("SET LOCAL jit = off")
                cursor.execute("SET LOCAL cursor_tuple_fraction = 1")
                # The scoring statement's hash aggregates and sorts (every account's windows,
                # distinct contacts) in memory, not spilled to temporary files.
                cursor.execute("SET LOCAL work_mem = '64MB'")
        scope = (accounts if accounts is not None else Account.objects.all()).filter(
            status=Account.Status.ACTIVE
        )
        if postgres:
            from health.sql_scoring import recompute_in_sql

            return recompute_in_sql(now=now, scope=scope, active=active, rules=rules, full=accounts is None)
        rerun = HealthScore.objects.filter(computed_at=now).exists()
        compiled = {
            pk: [_CompiledRule(rule) for rule in scorecard_rules] for pk, scorecard_rules in rules.items()
        }
        overrides = live_overrides(now=now)
        cache = MetricCache()
        specs = {rule.spec: rule for scorecard_rules in rules.values() for rule in scorecard_rules}
        # One stream per distinct metric; metrics reading the same source share one query.
        requested = streams(
            [(rule.metric, rule.params) for rule in specs.values()], as_of=now, accounts=scope, cache=cache
        )
        readings = {spec: _Readings(rows) for spec, rows in zip(specs, requested, strict=True)}
        sources = {pk: [readings[c.rule.spec] for c in measures] for pk, measures in compiled.items()}
        writer = _OrmWriter(now, scope)
        changes, band_changes, bands, batch, scored_count = [], [], Counter(), [], 0
        account_rows = (
            scope.order_by("pk")
            .values_list("pk", "segment", "health_score", "health_band")
            .iterator(chunk_size=WRITE_BATCH)
        )
        for account_id, segment, score_before, band_before in account_rows:
            scorecard = pick(segment)
            if scorecard is None:
                continue
            measures = compiled[scorecard.pk]
            values = [
                source.of(account_id) or c.empty
                for c, source in zip(measures, sources[scorecard.pk], strict=True)
            ]
            score, components, groups, missing, data_at = _score_row(measures, values)
            computed = band_for(score, red_below=scorecard.red_below, green_from=scorecard.green_from)
            override = overrides.get(account_id)
            band = override.band if override is not None else computed
            batch.append(
                (
                    account_id,
                    scorecard.pk,
                    score,
                    computed or "",
                    band or "",
                    components,
                    groups,
                    missing,
                    data_at,
                    override.pk if override is not None else None,
                )
            )
            scored_count += 1
            bands[band or UNSCORED] += 1
            if score != score_before or band != band_before:
                changes.append(ScoreChange(account_id, score_before, score, band_before, band))
            if band != band_before:
                band_changes.append(BandChange(account_id, band_before, band))
            if len(batch) >= WRITE_BATCH:
                writer.write(batch)
                batch = []
        if batch:
            writer.write(batch)
        writer.finish()
        if rerun:  # the band before was the replaced run's: the entries come from the history
            set_entries_from_history([change.account_id for change in band_changes])
    return HealthChanges(
        computed_at=now,
        accounts=scored_count,
        bands=dict(bands),
        band_changes=band_changes,
        scores=changes,
        full=accounts is None,
    )


RECOMPUTE_STEP = "health.recompute"
# Rows recorded this long before the previous run are looked at again: an ingestion transaction
# that stamped its rows just before that run started may have committed after it read the data.
RECORDING_MARGIN = dt.timedelta(minutes=5)
FULL_ABOVE_SHARE = 0.25  # an incremental run over more of the accounts than this rescores them all


def previous_recompute_at(*, now: dt.datetime) -> dt.datetime | None:
    """When the latest recompute at or before ``now`` ran (full or incremental); None: never."""
    return HealthScore.objects.filter(computed_at__lte=now).aggregate(at=Max("computed_at"))["at"]


def changed_account_ids(*, since: dt.datetime, now: dt.datetime) -> set[int]:
    """Accounts whose inputs were recorded in ``(since - margin, now]`` or took effect in ``(since, now]``.

    Recorded: events received, tickets updated, survey answers (they have no recording time:
    their answer time), touchpoints and milestones created, milestones completed or skipped,
    stage changes recorded or taking effect, overrides set, lifted or expired, the account row
    itself changed (segment, renewal date, status). One query over every source.

    What this cannot see is time alone moving a windowed metric (an event leaving a 30-day
    window, "days since" growing): the full rescore (``run_pipeline(full=True)``, daily) covers it.
    """
    from journeys.models import Milestone, StageChange

    start = since - RECORDING_MARGIN

    def within(field: str) -> Q:
        """A recording time: looked at again from the margin before the previous run."""
        return Q(**{f"{field}__gt": start, f"{field}__lte": now})

    def takes_effect(field: str) -> Q:
        """A time something takes effect (its row has its own recording time): after ``since`` only."""
        return Q(**{f"{field}__gt": since, f"{field}__lte": now})

    sources = [
        Event.objects.filter(within("received_at")),
        Ticket.objects.filter(within("updated_at")),
        SurveyResponse.objects.filter(within("responded_at")),
        Touchpoint.objects.filter(within("created_at")),
        Milestone.objects.filter(
            within("created_at") | within("completed_at") | within("skipped_at") | takes_effect("due_at")
        ),
        StageChange.objects.filter(within("recorded_at") | takes_effect("changed_at")),
        Override.objects.filter(within("created_at") | within("lifted_at") | takes_effect("expires_at")),
    ]
    accounts = Account.objects.filter(within("updated_at")).order_by().values_list("pk")
    union = accounts.union(*(rows.order_by().values_list("account_id") for rows in sources))
    return {pk for (pk,) in union}


@dataclass(frozen=True)
class ChangedSince:
    """The accounts whose inputs changed in ``(since, now]`` (``changed_account_ids``).

    Read once by an incremental pipeline run before its first step and handed to each step,
    instead of each step reading the same union again (~1 s at 1M accounts).
    """

    since: dt.datetime
    now: dt.datetime
    account_ids: frozenset[int]

    def with_accounts(self, ids: Iterable[int]) -> "ChangedSince":
        """The same span with ``ids`` added (accounts a step changed during the run)."""
        return ChangedSince(self.since, self.now, self.account_ids | frozenset(ids))

    def ids_for(self, *, since: dt.datetime, now: dt.datetime) -> set[int] | None:
        """The ids when they answer for ``(since, now]``; None when they were read for another span."""
        return set(self.account_ids) if (since, now) == (self.since, self.now) else None


def changed_ids(*, since: dt.datetime, now: dt.datetime, known: ChangedSince | None = None) -> set[int]:
    """``changed_account_ids`` for ``(since, now]``, taken from ``known`` when it was read for that span."""
    ids = known.ids_for(since=since, now=now) if known is not None else None
    return ids if ids is not None else changed_account_ids(since=since, now=now)


def changed_since_previous_recompute(*, now: dt.datetime) -> ChangedSince | None:
    """What changed since the previous recompute; None when there was none."""
    since = previous_recompute_at(now=now)
    if since is None:
        return None
    return ChangedSince(since, now, frozenset(changed_account_ids(since=since, now=now)))


def recompute_changed(
    *, now: dt.datetime, also: Iterable[int] = (), changed: ChangedSince | None = None
) -> HealthChanges:
    """Rescore only the accounts whose inputs changed since the previous recompute (and ``also``).

    Falls back to a full recompute when there is no previous one, a scorecard was published
    since (every account's rules changed) or most accounts changed anyway. ``changed``: what
    the caller already read (used when it answers for the same span).
    """
    since = previous_recompute_at(now=now)
    if (
        since is None
        or Scorecard.objects.filter(
            status=Scorecard.Status.ACTIVE, published_at__gt=since, published_at__lte=now
        ).exists()
    ):
        return recompute_health(now=now)
    ids = changed_ids(since=since, now=now, known=changed) | set(also)
    if exceeds_share_of_active(len(ids), FULL_ABOVE_SHARE):
        return recompute_health(now=now)  # as many as that: one pass over all is cheaper than a list
    return recompute_health(now=now, accounts=Account.objects.filter(any_of("pk", sorted(ids))))


def run_recompute_step(
    *,
    now: dt.datetime | None = None,
    full: bool = True,
    also: Iterable[int] = (),
    changed: ChangedSince | None = None,
) -> HealthChanges | None:
    """The pipeline's health step under its lock; None when another run holds it.

    ``full=False``: only the accounts whose inputs changed (``recompute_changed``).
    """
    with step_lock(RECOMPUTE_STEP) as acquired:
        if not acquired:
            return None
        now = now or timezone.now()
        changes = (
            recompute_health(now=now) if full else recompute_changed(now=now, also=also, changed=changed)
        )
    if changes.full:  # a daily run, or an incremental one that rescored every account
        mark_history_all_visible()  # once committed: VACUUM cannot run in a transaction
    return changes


def mark_history_all_visible() -> None:
    """VACUUM the score history after a full recompute wrote a row for every account.

    Its readers over a span of days (``score_dropped``'s peaks, My book's change over 30 days)
    read only its covering index (``healthscore_unique_run``) on pages marked all-visible, and
    autovacuum marks an insert-only table's new pages once a fifth of the table was inserted:
    days to weeks of runs at 1,000,000 accounts. Until then each row read was a random read of
    the heap (a row holds its components: ~1 KB): ``score_dropped``'s peaks over 2.9 million
    rows took 12.8 s, and 3.8 s once marked. VACUUM reads only the pages not yet marked (the
    run's). PostgreSQL only, and not inside a transaction (a caller's, a test's, autocommit off).

    Best effort, after the scores are committed: it never fails the step. A table another session
    holds (a manual VACUUM, ANALYZE or CREATE INDEX CONCURRENTLY) is skipped rather than waited
    for, and any database error is logged; the next full run marks the pages.
    """
    if connection.vendor != "postgresql" or connection.in_atomic_block or not connection.get_autocommit():
        return
    table = connection.ops.quote_name(HealthScore._meta.db_table)
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM (SKIP_LOCKED) {table}")
    except DatabaseError:
        logger.warning("VACUUM of the score history failed; the next full run retries", exc_info=True)


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
