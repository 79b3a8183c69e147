"""Lifecycle segments of transactional customers, and the second-purchase rate.

The first rule that matches, as of T, with N the settings' ``quiet_days``:

- lapsed: the last purchase was N days or more before T;
- reactivated: the account bought again after a gap of at least N days, within the last N days;
- new: one purchase; repeat: two; regular: three or more.

An account that never bought has no lifecycle segment. The second purchase is the best early sign
of loyalty, so the report gives the share of buyers who made one and the median days it took.
"""

import datetime as dt
import statistics
from dataclasses import dataclass

from django.db.models import Count, QuerySet

from insights.models import AccountValue, Lifecycle
from insights.purchases import PurchaseHistory

DAY = dt.timedelta(days=1)


def lifecycle_segment(history: PurchaseHistory | None, *, as_of: dt.datetime, quiet_days: int) -> str:
    """One account's lifecycle segment ("" for an account that never bought)."""
    if history is None:
        return ""
    quiet = quiet_days * DAY
    if as_of - history.last_at >= quiet:
        return Lifecycle.LAPSED
    if history.returned_at is not None and as_of - history.returned_at < quiet:
        return Lifecycle.REACTIVATED
    if history.purchases == 1:
        return Lifecycle.NEW
    if history.purchases == 2:
        return Lifecycle.REPEAT
    return Lifecycle.REGULAR


@dataclass
class LifecycleReport:
    counts: dict[str, int]
    buyers: int  # accounts with at least one purchase
    second_purchasers: int
    median_days_to_second: float | None
    average_days_to_second: float | None

    @property
    def second_purchase_rate(self) -> float | None:
        return self.second_purchasers / self.buyers if self.buyers else None


def lifecycle_report(*, accounts: QuerySet) -> LifecycleReport:
    """Accounts per lifecycle segment and the second-purchase figures, from the stored values.

    Two queries: the counts grouped by segment, and the first and second purchase times of the
    accounts that made a second purchase (one row each).
    """
    values = AccountValue.objects.filter(account__in=accounts.order_by().values("pk"))
    counts = dict.fromkeys(Lifecycle.values, 0)
    buyers = 0
    grouped = values.exclude(lifecycle="").order_by().values("lifecycle").annotate(n=Count("pk"))
    for segment, n in grouped.values_list("lifecycle", "n"):
        counts[segment] = n
        buyers += n
    gaps = [
        (second - first).total_seconds() / DAY.total_seconds()
        for first, second in values.filter(second_purchase_at__isnull=False).values_list(
            "first_purchase_at", "second_purchase_at"
        )
    ]
    return LifecycleReport(
        counts=counts,
        buyers=buyers,
        second_purchasers=len(gaps),
        median_days_to_second=round(statistics.median(gaps), 1) if gaps else None,
        average_days_to_second=round(statistics.fmean(gaps), 1) if gaps else None,
    )
