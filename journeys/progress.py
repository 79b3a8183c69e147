"""Milestone progress of every account at a point in time, for health metrics and backtests.

Set-based: two queries whatever the number of accounts. Only what was true at ``as_of`` counts:
the stage comes from the ``StageChange`` history (the latest change at or before ``as_of``), a
milestone counts as done only if it was completed by then, and one skipped later still counts.
"""

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, OuterRef, Q, Subquery

from journeys.models import Milestone, StageChange


@dataclass(frozen=True)
class MilestoneProgress:
    completion: float | None  # percent (0-100) of the stage's milestones done; None: the stage has none
    overdue: int  # milestones of that stage past due and not done at as_of


def _visit_at(as_of: dt.datetime, account_ref: str) -> Subquery:
    """The id of the account's stage visit at ``as_of`` (its latest change at or before then)."""
    return Subquery(
        StageChange.objects.filter(account_id=OuterRef(account_ref), changed_at__lte=as_of)
        .order_by("-changed_at", "-id")
        .values("id")[:1]
    )


def milestone_progress(*, as_of: dt.datetime) -> dict[int, MilestoneProgress]:
    """Per account id that had a stage at ``as_of``: completion percent and overdue count then."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    # Accounts that had entered some stage by as_of (one row per account).
    placed = StageChange.objects.filter(changed_at__lte=as_of).values_list("account_id", flat=True).distinct()
    progress = dict.fromkeys(placed, MilestoneProgress(completion=None, overdue=0))

    not_skipped = Q(skipped_at__isnull=True) | Q(skipped_at__gt=as_of)
    done = Q(completed_at__isnull=False, completed_at__lte=as_of)
    rows = (
        Milestone.objects.filter(visit_id=_visit_at(as_of, "account_id"))
        .filter(not_skipped)
        .values("account_id")
        .annotate(
            total=Count("id"),
            done=Count("id", filter=done),
            overdue=Count("id", filter=Q(due_at__lt=as_of) & ~done),
        )
        .order_by()
    )
    for row in rows:
        progress[row["account_id"]] = MilestoneProgress(
            completion=round(100.0 * row["done"] / row["total"], 1), overdue=row["overdue"]
        )
    return progress
