"""Scorecards as data: validation (shared by the API, the admin and import_config), versions, publish.

A scorecard version that has been active is never changed again: an edit makes a new draft of the
same segment, and publishing a draft retires the segment's active version, so old scores keep
pointing at the rules that made them. Every change is audited in its own transaction.
"""

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max

from accounts.audit import record_change
from health.metrics import METRICS, validate_params
from health.models import Measure, Scorecard

SLUG = re.compile(r"^[-a-zA-Z0-9_]+$")
READ_ONLY_FIELDS = {"id", "version", "status", "created_at", "updated_at", "published_at", "derived_from"}
SCORECARD_FIELDS = {"name", "segment", "red_below", "green_from", "stale_after_days", "measures"}
MEASURE_FIELDS = {"key", "label", "group", "metric", "params", "weight", "mapping"}


@dataclass(frozen=True)
class CleanMeasure:
    key: str
    label: str
    group: str
    metric: str
    params: dict
    weight: Decimal
    mapping: dict


class _Errors:
    """Collects problems by field path (``measures[2].params.days``) for one ValidationError."""

    def __init__(self) -> None:
        self.by_field: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        self.by_field.setdefault(field, []).append(message)

    def raise_any(self) -> None:
        if self.by_field:
            raise ValidationError(self.by_field)


def _number(value: Any) -> Decimal | None:
    """A finite decimal from a JSON number or numeric string; None for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _text(errors: _Errors, field: str, value: Any, *, max_length: int, slug: bool = False) -> str | None:
    if not isinstance(value, str) or not value.strip():
        errors.add(field, "must be a non-empty string")
        return None
    value = value.strip()
    if len(value) > max_length:
        errors.add(field, f"must be at most {max_length} characters")
    elif slug and not SLUG.match(value):
        errors.add(field, "may contain only letters, digits, '-' and '_'")
    return value


def _band_threshold(errors: _Errors, field: str, value: Any) -> Decimal | None:
    number = _number(value)
    if number is None or not 0 <= number <= 100:
        errors.add(field, "must be a number from 0 to 100")
        return None
    return number.quantize(Decimal("0.1"))


def validate_mapping(errors: _Errors, field: str, mapping: Any) -> dict | None:
    """A thresholds mapping (strictly increasing values) or a linear one (zero_at ≠ full_at)."""
    if not isinstance(mapping, dict):
        errors.add(field, 'must be an object with "type": "thresholds" or "linear"')
        return None
    kind = mapping.get("type")
    if kind == "thresholds":
        extra = set(mapping) - {"type", "points"}
        if extra:
            errors.add(field, f"unknown keys for a thresholds mapping: {', '.join(sorted(extra))}")
        points = mapping.get("points")
        if not isinstance(points, list) or not points:
            errors.add(f"{field}.points", "must be a non-empty list of [value, points] pairs")
            return None
        clean: list[list[float]] = []
        for index, pair in enumerate(points):
            where = f"{field}.points[{index}]"
            if not isinstance(pair, list | tuple) or len(pair) != 2:
                errors.add(where, "must be a [value, points] pair")
                return None
            value, score = _number(pair[0]), _number(pair[1])
            if value is None:
                errors.add(where, "the value must be a number")
                return None
            if score is None or not 0 <= score <= 100:
                errors.add(where, "the points must be a number from 0 to 100")
                return None
            if clean and value <= Decimal(str(clean[-1][0])):
                errors.add(
                    f"{field}.points", "values must be strictly increasing (the mapping is not monotonic)"
                )
                return None
            clean.append([_plain(value), _plain(score)])
        return {"type": "thresholds", "points": clean}
    if kind == "linear":
        extra = set(mapping) - {"type", "zero_at", "full_at"}
        if extra:
            errors.add(field, f"unknown keys for a linear mapping: {', '.join(sorted(extra))}")
        zero_at, full_at = _number(mapping.get("zero_at")), _number(mapping.get("full_at"))
        if zero_at is None:
            errors.add(f"{field}.zero_at", "must be a number")
        if full_at is None:
            errors.add(f"{field}.full_at", "must be a number")
        if zero_at is None or full_at is None:
            return None
        if zero_at == full_at:
            errors.add(f"{field}.full_at", "must differ from zero_at")
            return None
        return {"type": "linear", "zero_at": _plain(zero_at), "full_at": _plain(full_at)}
    errors.add(f"{field}.type", 'must be "thresholds" or "linear"')
    return None


def _plain(number: Decimal) -> int | float:
    """A JSON number that reads back as the same decimal."""
    return int(number) if number == number.to_integral_value() else float(number)


def _measure(errors: _Errors, index: int, data: Any) -> CleanMeasure | None:
    at = f"measures[{index}]"
    if not isinstance(data, dict):
        errors.add(at, "must be an object")
        return None
    for name in sorted(set(data) - MEASURE_FIELDS - {"id"}):
        errors.add(f"{at}.{name}", "unknown field")
    key = _text(errors, f"{at}.key", data.get("key"), max_length=64, slug=True)
    label = data.get("label") or key
    label = _text(errors, f"{at}.label", label, max_length=255) if label else None
    group = _text(errors, f"{at}.group", data.get("group") or "usage", max_length=32, slug=True)
    metric = data.get("metric")
    params: dict = {}
    if metric not in METRICS:
        errors.add(f"{at}.metric", f"unknown metric {metric!r}; known: {', '.join(sorted(METRICS))}")
    else:
        raw_params = data.get("params") or {}
        for name, message in validate_params(metric, raw_params).items():
            errors.add(f"{at}.params.{name}" if name else f"{at}.params", message)
        if isinstance(raw_params, dict):
            params = {k: v.strip() if isinstance(v, str) else v for k, v in raw_params.items()}
    weight = _number(data.get("weight"))
    if weight is None or weight <= 0:
        errors.add(f"{at}.weight", "must be a number greater than 0")
    elif weight > Decimal("9999.99") or weight != weight.quantize(Decimal("0.01")):
        errors.add(f"{at}.weight", "must be at most 9999.99, with at most two decimal places")
    mapping = validate_mapping(errors, f"{at}.mapping", data.get("mapping"))
    if None in (key, label, group, mapping) or metric not in METRICS or weight is None:
        return None
    return CleanMeasure(key, label, group, metric, params, weight, mapping)


def validate_scorecard(data: Any, *, partial: bool = False) -> dict[str, Any]:
    """Clean scorecard fields from JSON, or a ValidationError naming each bad field by its path."""
    errors = _Errors()
    if not isinstance(data, dict):
        raise ValidationError({"non_field_errors": ["Expected a JSON object."]})
    clean: dict[str, Any] = {}
    for name in sorted(set(data) - SCORECARD_FIELDS - READ_ONLY_FIELDS):
        errors.add(name, "unknown field")
    if not partial:
        for name in ("name", "red_below", "green_from", "measures"):
            if name not in data:
                errors.add(name, "this field is required")
    if "name" in data:
        clean["name"] = _text(errors, "name", data["name"], max_length=255)
    if "segment" in data:
        segment = data["segment"]
        if segment is None or (isinstance(segment, str) and not segment.strip()):
            clean["segment"] = ""
        else:
            clean["segment"] = _text(errors, "segment", segment, max_length=64)
    for name in ("red_below", "green_from"):
        if name in data:
            clean[name] = _band_threshold(errors, name, data[name])
    red_below, green_from = clean.get("red_below"), clean.get("green_from")
    if red_below is not None and green_from is not None and red_below > green_from:
        errors.add("red_below", f"must not be above green_from ({green_from})")
    if "stale_after_days" in data:
        days = data["stale_after_days"]
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 365:
            errors.add("stale_after_days", "must be a whole number of days from 1 to 365")
        clean["stale_after_days"] = days
    if "measures" in data:
        measures = data["measures"]
        if not isinstance(measures, list) or not measures:
            errors.add("measures", "must be a non-empty list of measures")
        else:
            cleaned = [_measure(errors, index, item) for index, item in enumerate(measures)]
            seen: set[str] = set()
            for index, measure in enumerate(cleaned):
                if measure and measure.key in seen:
                    errors.add(f"measures[{index}].key", f"duplicate key {measure.key!r}")
                if measure:
                    seen.add(measure.key)
            clean["measures"] = cleaned
    errors.raise_any()
    return clean


def _check_bands(red_below: Decimal, green_from: Decimal) -> None:
    if red_below > green_from:
        raise ValidationError({"red_below": [f"must not be above green_from ({green_from})"]})


def next_version(segment: str) -> int:
    """The next version number of a segment's scorecards."""
    latest = Scorecard.objects.filter(segment=segment).aggregate(v=Max("version"))["v"]
    return (latest or 0) + 1


def _write_measures(scorecard: Scorecard, measures: list[CleanMeasure]) -> None:
    scorecard.measures.all().delete()
    Measure.objects.bulk_create(
        Measure(
            scorecard=scorecard,
            key=m.key,
            label=m.label,
            group=m.group,
            metric=m.metric,
            params=m.params,
            weight=m.weight,
            mapping=m.mapping,
            position=position,
        )
        for position, m in enumerate(measures)
    )


def scorecard_config(scorecard: Scorecard) -> dict[str, Any]:
    """The scorecard as the API and export_config show it (segment null = default)."""
    return {
        "id": scorecard.pk,
        "name": scorecard.name,
        "segment": scorecard.segment or None,
        "version": scorecard.version,
        "status": scorecard.status,
        "red_below": float(scorecard.red_below),
        "green_from": float(scorecard.green_from),
        "stale_after_days": scorecard.stale_after_days,
        "derived_from": scorecard.derived_from_id,
        "published_at": scorecard.published_at.isoformat() if scorecard.published_at else None,
        "measures": [
            {
                "key": m.key,
                "label": m.label,
                "group": m.group,
                "metric": m.metric,
                "params": m.params,
                "weight": float(m.weight),
                "mapping": m.mapping,
            }
            for m in scorecard.measures.all()
        ],
    }


def _audit_values(clean: dict[str, Any]) -> dict[str, Any]:
    values = {k: str(v) if isinstance(v, Decimal) else v for k, v in clean.items() if k != "measures"}
    if "measures" in clean:
        values["measures"] = [m.key for m in clean["measures"]]
    return values


@transaction.atomic
def create_scorecard(
    *, actor, data: Any, now: dt.datetime, derived_from: Scorecard | None = None
) -> Scorecard:
    """A new draft version of its segment's scorecard, from validated data."""
    clean = validate_scorecard(data)
    _check_bands(clean["red_below"], clean["green_from"])
    segment = clean.get("segment", "")
    # Lock the segment's versions so two drafts made at once cannot take the same number.
    list(Scorecard.objects.select_for_update().filter(segment=segment).values_list("pk"))
    scorecard = Scorecard.objects.create(
        name=clean["name"],
        segment=segment,
        version=next_version(segment),
        status=Scorecard.Status.DRAFT,
        red_below=clean["red_below"],
        green_from=clean["green_from"],
        stale_after_days=clean.get("stale_after_days", 14),
        derived_from=derived_from,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    _write_measures(scorecard, clean["measures"])
    record_change(actor=actor, action="scorecard.created", target=scorecard, changes=_audit_values(clean))
    return scorecard


@transaction.atomic
def update_scorecard(*, actor, scorecard: Scorecard, data: Any, now: dt.datetime) -> Scorecard:
    """Change a draft in place; an active or retired version is copied into a new draft instead."""
    clean = validate_scorecard(data, partial=True)
    _check_bands(
        clean.get("red_below", scorecard.red_below),
        clean.get("green_from", scorecard.green_from),
    )
    if scorecard.status != Scorecard.Status.DRAFT:
        merged = {k: v for k, v in scorecard_config(scorecard).items() if k in SCORECARD_FIELDS}
        merged.update({k: v for k, v in data.items() if k in SCORECARD_FIELDS})
        return create_scorecard(actor=actor, data=merged, now=now, derived_from=scorecard)
    fields = [name for name in ("name", "red_below", "green_from", "stale_after_days") if name in clean]
    for name in fields:
        setattr(scorecard, name, clean[name])
    if "segment" in clean and clean["segment"] != scorecard.segment:
        # A draft moved to another segment takes that segment's next version number.
        scorecard.segment = clean["segment"]
        scorecard.version = next_version(clean["segment"])
        fields += ["segment", "version"]
    scorecard.save(update_fields=[*fields, "updated_at"])
    if "measures" in clean:
        _write_measures(scorecard, clean["measures"])
    record_change(actor=actor, action="scorecard.updated", target=scorecard, changes=_audit_values(clean))
    return scorecard


@transaction.atomic
def publish_scorecard(*, actor, scorecard: Scorecard, now: dt.datetime) -> Scorecard:
    """Activate a draft; the active version of its segment retires. Safe against a double click."""
    locked = list(Scorecard.objects.select_for_update().filter(segment=scorecard.segment))
    scorecard = next(s for s in locked if s.pk == scorecard.pk)
    if scorecard.status != Scorecard.Status.DRAFT:
        raise ValidationError(
            {"status": [f"only a draft can be published; this version is {scorecard.status}"]}
        )
    if not scorecard.measures.exists():
        raise ValidationError({"measures": ["a scorecard needs at least one measure"]})
    for previous in locked:
        if previous.status == Scorecard.Status.ACTIVE:
            previous.status = Scorecard.Status.RETIRED
            previous.save(update_fields=["status", "updated_at"])
            record_change(
                actor=actor,
                action="scorecard.retired",
                target=previous,
                changes={"replaced_by": scorecard.pk},
            )
    scorecard.status = Scorecard.Status.ACTIVE
    scorecard.published_at = now
    scorecard.save(update_fields=["status", "published_at", "updated_at"])
    record_change(
        actor=actor, action="scorecard.published", target=scorecard, changes={"version": scorecard.version}
    )
    return scorecard


@dataclass(frozen=True)
class ImportResult:
    created: int
    unchanged: int
    published: int


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    """What makes two scorecards the same rules (ignoring ids, versions, status)."""
    clean = validate_scorecard(config)
    return {
        **{k: v for k, v in clean.items() if k != "measures"},
        "segment": clean.get("segment", ""),
        "stale_after_days": clean.get("stale_after_days", 14),
        "measures": clean["measures"],
    }


@transaction.atomic
def import_scorecards(*, actor, data: Any, now: dt.datetime, publish: bool = True) -> ImportResult:
    """Load scorecards from exported JSON: all validated first, then each new one a new version.

    A scorecard identical to its segment's active version is left alone, so importing the same
    file twice changes nothing.
    """
    if not isinstance(data, dict) or not isinstance(data.get("scorecards"), list):
        raise ValidationError({"scorecards": ['expected {"scorecards": [...]}']})
    cleaned = []
    problems: dict[str, list[str]] = {}
    for index, item in enumerate(data["scorecards"]):
        try:
            cleaned.append((item, _comparable(item)))
            _check_bands(cleaned[-1][1]["red_below"], cleaned[-1][1]["green_from"])
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                problems[f"scorecards[{index}].{field}"] = messages
    if problems:
        raise ValidationError(problems)
    created = unchanged = published = 0
    for item, comparable in cleaned:
        active = (
            Scorecard.objects.filter(segment=comparable["segment"], status=Scorecard.Status.ACTIVE)
            .prefetch_related("measures")
            .first()
        )
        if active is not None and _comparable(scorecard_config(active)) == comparable:
            unchanged += 1
            continue
        scorecard = create_scorecard(actor=actor, data=item, now=now, derived_from=active)
        created += 1
        if publish:
            publish_scorecard(actor=actor, scorecard=scorecard, now=now)
            published += 1
    return ImportResult(created=created, unchanged=unchanged, published=published)


def export_scorecards(*, include_all: bool = False) -> dict[str, Any]:
    """Active scorecards (or every version) as JSON that import_scorecards reads back."""
    scorecards = Scorecard.objects.prefetch_related("measures").order_by("segment", "version")
    if not include_all:
        scorecards = scorecards.filter(status=Scorecard.Status.ACTIVE)
    return {"scorecards": [scorecard_config(s) for s in scorecards]}
