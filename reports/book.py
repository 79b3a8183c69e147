"""My book: a CSM's accounts with their health trend, open tasks and the totals by band.

Each function is one query whatever the number of accounts, so the page costs the same for a
book of ten accounts or ten thousand.
"""

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import (
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce

from accounts.models import Account
from health.models import HealthScore
from playbooks.models import Task
from reports.renewals import BANDS, band_key

SPARKLINE_DAYS = 90
CHANGE_DAYS = 30

# Sort keys of the table → ORM orderings (nulls last either way).
SORTS = {
    "name": "name",
    "segment": "segment",
    "arr": "arr",
    "stage": "stage",
    "health": "health_score",
    "change": "change_30d",
    "renewal": "renewal_date",
    "owner": "owner__username",
    "tasks": "open_tasks",
}


def annotate_book(accounts: QuerySet[Account], *, now: dt.datetime) -> QuerySet[Account]:
    """Add ``open_tasks``, ``score_30d_ago`` and ``change_30d`` to each account (subqueries)."""
    open_tasks = (
        Task.objects.filter(account=OuterRef("pk"), status=Task.Status.OPEN)
        .order_by()
        .values("account")
        .annotate(n=Count("id"))
        .values("n")
    )
    before = (
        HealthScore.objects.filter(
            account=OuterRef("pk"), computed_at__lte=now - dt.timedelta(days=CHANGE_DAYS)
        )
        .order_by("-computed_at")
        .values("score")[:1]
    )
    return accounts.select_related("owner").annotate(
        open_tasks=Coalesce(Subquery(open_tasks, output_field=IntegerField()), Value(0)),
        score_30d_ago=Subquery(before),
        change_30d=ExpressionWrapper(
            F("health_score") - F("score_30d_ago"), output_field=DecimalField(max_digits=5, decimal_places=1)
        ),
    )


def order_book(accounts: QuerySet[Account], sort: str) -> QuerySet[Account]:
    """Order by a key of ``SORTS``, ``-key`` for descending; unknown keys sort by renewal."""
    descending = sort.startswith("-")
    field = SORTS.get(sort.lstrip("-"), "renewal_date")
    expression = F(field).desc(nulls_last=True) if descending else F(field).asc(nulls_last=True)
    return accounts.order_by(expression, "name", "id")


def sparklines(
    *, account_ids: list[int], now: dt.datetime, days: int = SPARKLINE_DAYS
) -> dict[int, list[tuple[dt.datetime, float]]]:
    """The scores of the last ``days`` of each account, oldest first (one query)."""
    series: dict[int, list[tuple[dt.datetime, float]]] = defaultdict(list)
    rows = (
        HealthScore.objects.filter(
            account_id__in=account_ids,
            computed_at__gt=now - dt.timedelta(days=days),
            computed_at__lte=now,
            score__isnull=False,
        )
        .order_by("account_id", "computed_at")
        .values_list("account_id", "computed_at", "score")
    )
    for account_id, at, score in rows:
        series[account_id].append((at, float(score)))
    return series


@dataclass(frozen=True)
class BandTotal:
    band: str
    accounts: int
    arr: Decimal


def book_summary(scope: QuerySet[Account], condition: Q) -> tuple[list[BandTotal], list[tuple]]:
    """Accounts and ARR per band of the filtered book (``unscored`` for accounts without one, red
    first), and the filters' choices over the whole scope, in one pass.

    The choices (the distinct stage, segment and owner of the scope) and the totals of the
    accounts that meet ``condition`` come from one ``GROUP BY stage, segment, owner, band`` of
    the scope with the counts and sums filtered by ``condition``: one read of a team's accounts
    instead of two (each tens of ms for a team's ~20,000 accounts scattered over 1M rows).
    """
    totals = {band: [0, Decimal(0)] for band in BANDS}
    options = set()
    rows = (
        scope.order_by()
        .values_list("stage", "segment", "owner_id", "health_band")
        .annotate(n=Count("id", filter=condition or None), arr=Sum("arr", filter=condition or None))
    )
    for stage, segment, owner_id, band, n, arr in rows:
        options.add((stage, segment, owner_id))
        entry = totals[band_key(band)]
        entry[0] += n
        entry[1] += arr or 0
    return [BandTotal(band, n, arr) for band, (n, arr) in totals.items()], list(options)
