"""RFM segmentation: recency, frequency and monetary quintiles, and the named segment they make.

The scores come from ``purchases.window_purchases`` (one SQL statement over all accounts). The
named segment is the first rule that matches, in this order:

=====================  ==========================================================
new                    R ≥ 4 and exactly one purchase in the window
champions              R ≥ 4, F ≥ 4 and M ≥ 4
can't lose them        R ≤ 2, F ≥ 4 and M ≥ 4
at risk                R ≤ 2 and (F ≥ 3 or M ≥ 3)
hibernating            R = 2
lost                   R = 1, or purchases before the window but none in it
loyal                  F ≥ 4 (R is 3 or more here)
potential loyalists    everything else (R ≥ 3)
=====================  ==========================================================

An account that never bought has no segment.
"""

from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, F, QuerySet, Sum

from insights.models import RfmSegment
from insights.purchases import WindowPurchases


def rfm_segment(window: WindowPurchases | None, *, bought_before: bool) -> str:
    """The named segment of one account's scores ("" for an account that never bought)."""
    if window is None:
        return RfmSegment.LOST if bought_before else ""
    r, f, m = window.r_score, window.f_score, window.m_score
    if r >= 4 and window.frequency == 1:
        return RfmSegment.NEW
    if r >= 4 and f >= 4 and m >= 4:
        return RfmSegment.CHAMPIONS
    if r <= 2 and f >= 4 and m >= 4:
        return RfmSegment.CANT_LOSE
    if r <= 2 and (f >= 3 or m >= 3):
        return RfmSegment.AT_RISK
    if r == 2:
        return RfmSegment.HIBERNATING
    if r == 1:
        return RfmSegment.LOST
    if f >= 4:
        return RfmSegment.LOYAL
    return RfmSegment.POTENTIAL_LOYALISTS


@dataclass
class RfmReport:
    accounts_by_segment: dict[str, int]
    clv_by_segment: dict[str, Decimal]
    grid: list[list[int]]  # grid[r - 1][f - 1]: accounts with that recency and frequency score
    segment: str | None = None
    members: list = field(default_factory=list)  # AccountValue rows of ``segment``, highest CLV first


def rfm_report(*, accounts: QuerySet, segment: str | None = None, limit: int = 100) -> RfmReport:
    """Accounts and CLV per named segment, the R x F grid, and the members of one segment.

    Two queries, three with ``segment``; from the values stored by the insights step.
    """
    from insights.models import AccountValue

    values = AccountValue.objects.filter(account__in=accounts.order_by().values("pk"))
    by_segment = dict.fromkeys(RfmSegment.values, 0)
    clv = dict.fromkeys(RfmSegment.values, Decimal("0.00"))
    for row in (
        values.exclude(rfm_segment="")
        .order_by()
        .values("rfm_segment")
        .annotate(n=Count("pk"), clv=Sum("clv"))
    ):
        by_segment[row["rfm_segment"]] = row["n"]
        clv[row["rfm_segment"]] = row["clv"] or Decimal("0.00")
    grid = [[0] * 5 for _ in range(5)]
    cells = (
        values.filter(r_score__isnull=False).order_by().values("r_score", "f_score").annotate(n=Count("pk"))
    )
    for row in cells:
        grid[row["r_score"] - 1][row["f_score"] - 1] = row["n"]
    members = []
    if segment:
        members = list(
            values.filter(rfm_segment=segment)
            .select_related("account", "account__owner")
            .order_by(F("clv").desc(nulls_last=True), "account_id")[:limit]
        )
    return RfmReport(by_segment, clv, grid, segment, members)
