"""Churn analysis: the accounts that churned in a period, by the stage they churned in, by reason,
by the health band they had 90 days before, and by segment — where in the journey they are lost.

- stage: the stage the account left for the churn stage (the journey's "churned" transition);
  without such a transition, its current stage; "unknown" without either;
- reason: the account's ``churn_reason`` ("unknown" when blank);
- band 90 days before: the band of its latest health score computed at or before the churn date
  minus 90 days ("unscored" without one).

Churned accounts without a churn date are left out. Three queries whatever the number of accounts.
"""

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import DateTimeField, ExpressionWrapper, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Cast

from accounts.models import Account

BAND_LEAD_DAYS = 90
UNKNOWN = "unknown"
UNSCORED = "unscored"
LISTED = 50


@dataclass
class ChurnReport:
    start: dt.date
    end: dt.date  # inclusive
    churned: int
    arr_lost: Decimal
    by_stage: dict[str, int]
    by_reason: dict[str, int]
    by_band_before: dict[str, int]
    by_segment: dict[str, int]
    arr_by_stage: dict[str, Decimal]
    accounts: list[dict] = field(default_factory=list)  # the most recent first, at most LISTED


def _sorted(counter: Counter) -> dict:
    return dict(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


def churn_report(*, accounts: QuerySet[Account], start: dt.date, end: dt.date) -> ChurnReport:
    """Accounts of ``accounts`` that churned from ``start`` to ``end`` (both included)."""
    # Upward reads (journeys' history, health's scores) for this report only.
    from health.models import HealthScore
    from journeys.models import StageChange

    left_stage = (
        StageChange.objects.filter(
            account=OuterRef("pk"), cause=StageChange.Cause.CHURNED, from_stage__isnull=False
        )
        .order_by("-changed_at", "-id")
        .values("from_stage__key")[:1]
    )
    band_before = (
        HealthScore.objects.filter(account=OuterRef("pk"), computed_at__lte=OuterRef("band_at"))
        .exclude(band="")
        .order_by("-computed_at", "-id")
        .values("band")[:1]
    )
    rows = (
        accounts.filter(status=Account.Status.CHURNED, churned_at__gte=start, churned_at__lte=end)
        .annotate(
            band_at=ExpressionWrapper(
                Cast("churned_at", DateTimeField()) - Value(dt.timedelta(days=BAND_LEAD_DAYS)),
                output_field=DateTimeField(),
            )
        )
        .annotate(
            left_stage=Subquery(left_stage),
            band_before=Subquery(band_before),
        )
        .order_by("-churned_at", "name", "pk")
        .values(
            "pk", "name", "segment", "arr", "stage", "churned_at", "churn_reason", "left_stage", "band_before"
        )
    )
    by_stage, by_reason, by_band, by_segment = Counter(), Counter(), Counter(), Counter()
    arr_by_stage: dict[str, Decimal] = {}
    listed, arr_lost = [], Decimal("0.00")
    for row in rows:
        stage = row["left_stage"] or row["stage"] or UNKNOWN
        reason = row["churn_reason"].strip() or UNKNOWN
        band = row["band_before"] or UNSCORED
        by_stage[stage] += 1
        by_reason[reason] += 1
        by_band[band] += 1
        by_segment[row["segment"] or UNKNOWN] += 1
        arr_by_stage[stage] = arr_by_stage.get(stage, Decimal("0.00")) + row["arr"]
        arr_lost += row["arr"]
        if len(listed) < LISTED:
            listed.append({**row, "churn_stage": stage, "reason": reason, "band_before": band})
    return ChurnReport(
        start=start,
        end=end,
        churned=sum(by_stage.values()),
        arr_lost=arr_lost,
        by_stage=_sorted(by_stage),
        by_reason=_sorted(by_reason),
        by_band_before=_sorted(by_band),
        by_segment=_sorted(by_segment),
        arr_by_stage=arr_by_stage,
        accounts=listed,
    )
