"""Why an account has its score: components, missing measures, override, changes since last time."""

import datetime as dt
from typing import Any

from accounts.models import Account
from health.models import HealthScore, Override
from health.scoring import is_stale, live_overrides


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def component_changes(current: HealthScore, previous: HealthScore | None) -> list[dict[str, Any]]:
    """Measures whose raw value moved between two scores, with the change in points."""
    if previous is None:
        return []
    before = {c["measure"]: c for c in previous.full_components()}
    changes = []
    for component in current.full_components():
        old = before.get(component["measure"], {})
        if old.get("raw") == component["raw"]:
            continue
        points_delta = None
        if old.get("points") is not None and component["points"] is not None:
            points_delta = round(component["points"] - old["points"], 2)
        changes.append(
            {
                "measure": component["measure"],
                "raw_before": old.get("raw"),
                "raw_now": component["raw"],
                "points_delta": points_delta,
            }
        )
    return changes


def override_json(override: Override | None) -> dict[str, Any] | None:
    if override is None:
        return None
    return {
        "band": override.band,
        "reason": override.reason,
        "expires_at": override.expires_at.isoformat(),
        "created_by": override.created_by_id,
        "created_at": override.created_at.isoformat(),
    }


def explain_health(*, account: Account, now: dt.datetime) -> dict[str, Any]:
    """The body of ``GET /accounts/{id}/health/`` (API.md) plus sub-scores and freshness."""
    latest = list(
        HealthScore.objects.filter(account=account, computed_at__lte=now)
        .select_related("scorecard")
        .order_by("-computed_at")[:2]
    )
    override = live_overrides(now=now, account_ids=[account.pk]).get(account.pk)
    if not latest:
        return {
            "score": None,
            "band": override.band if override else None,
            "computed_band": None,
            "scorecard": None,
            "computed_at": None,
            "components": [],
            "groups": {},
            "missing": [],
            "override": override_json(override),
            "changes": [],
            "data_at": None,
            "stale": True,
        }
    current, previous = latest[0], (latest[1] if len(latest) > 1 else None)
    scorecard = current.scorecard
    return {
        "score": _number(current.score),
        "band": (override.band if override else current.computed_band) or None,
        "computed_band": current.computed_band or None,
        "scorecard": {"id": scorecard.pk, "name": scorecard.name, "version": scorecard.version},
        "computed_at": current.computed_at.isoformat(),
        "components": [
            {
                "measure": c["measure"],
                "label": c["label"],
                "group": c["group"],
                "metric": c["metric"],
                "raw": c["raw"],
                "points": c["points"],
                "weight": c["weight"],
                "contribution": c["contribution"],
                "data_at": c["data_at"],
            }
            for c in current.full_components()
        ],
        "groups": current.groups,
        "missing": current.missing,
        "override": override_json(override),
        "changes": component_changes(current, previous),
        "data_at": current.data_at.isoformat() if current.data_at else None,
        "stale": is_stale(
            data_at=current.data_at, computed_at=current.computed_at, now=now, days=scorecard.stale_after_days
        ),
    }


def health_history(*, account: Account, now: dt.datetime, days: int) -> list[dict[str, Any]]:
    """The account's scores of the last ``days``, oldest first."""
    rows = (
        HealthScore.objects.filter(
            account=account, computed_at__gte=now - dt.timedelta(days=days), computed_at__lte=now
        )
        .order_by("computed_at")
        .values_list("computed_at", "score", "band")
    )
    return [
        {"computed_at": at.isoformat(), "score": _number(score), "band": band or None}
        for at, score, band in rows
    ]
