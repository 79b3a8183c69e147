"""The insights pipeline step: every account's value figures as of now, stored in one upsert.

It runs after journeys and before health (``playbooks.pipeline``), so a scorecard or a playbook
reads this run's figures. Idempotent: a rerun with the same data writes the same rows, and an
account's RFM segment keeps its ``rfm_segment_since`` for as long as it stays in that segment,
which is what the ``segment_entered`` trigger keys on.
"""

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone

from accounts.locking import step_lock
from insights.clv import account_figures
from insights.models import AccountValue

STEP_LOCK = "insights.recompute"
BATCH_SIZE = 2000

_UPDATED_FIELDS = [
    "computed_at",
    "purchases",
    "first_purchase_at",
    "second_purchase_at",
    "last_purchase_at",
    "window_purchases",
    "window_value",
    "average_order_value",
    "purchases_per_year",
    "gross_margin",
    "churn_rate",
    "expected_lifetime_years",
    "clv",
    "recency_days",
    "r_score",
    "f_score",
    "m_score",
    "rfm_segment",
    "rfm_segment_since",
    "previous_rfm_segment",
    "lifecycle",
]


@dataclass
class InsightsResult:
    accounts: int = 0
    buyers: int = 0
    segment_changes: int = 0

    def counts(self) -> dict[str, int]:
        return {"accounts": self.accounts, "buyers": self.buyers, "segment_changes": self.segment_changes}


def recompute_insights(*, now: dt.datetime) -> InsightsResult:
    """Compute and store every account's figures as of ``now``; return what changed."""
    figures = account_figures(as_of=now)
    previous = {
        pk: (segment, since, before)
        for pk, segment, since, before in AccountValue.objects.values_list(
            "account_id", "rfm_segment", "rfm_segment_since", "previous_rfm_segment"
        )
    }
    result = InsightsResult(accounts=len(figures))
    rows = []
    for pk, f in figures.items():
        old_segment, since, before = previous.get(pk, ("", None, ""))
        if f.rfm_segment != old_segment:
            # A new segment (or none): remember where it came from and when it was entered.
            before, since = old_segment, (now if f.rfm_segment else None)
            result.segment_changes += 1
        history, window = f.history, f.window
        result.buyers += history is not None
        rows.append(
            AccountValue(
                account_id=pk,
                computed_at=now,
                purchases=history.purchases if history else 0,
                first_purchase_at=history.first_at if history else None,
                second_purchase_at=history.second_at if history else None,
                last_purchase_at=history.last_at if history else None,
                window_purchases=window.frequency if window else 0,
                window_value=window.monetary if window else 0,
                average_order_value=f.average_order_value,
                purchases_per_year=f.purchases_per_year,
                gross_margin=f.gross_margin,
                churn_rate=f.churn_rate,
                expected_lifetime_years=f.expected_lifetime_years,
                clv=f.clv,
                recency_days=window.recency_days if window else None,
                r_score=window.r_score if window else None,
                f_score=window.f_score if window else None,
                m_score=window.m_score if window else None,
                rfm_segment=f.rfm_segment,
                rfm_segment_since=since,
                previous_rfm_segment=before,
                lifecycle=f.lifecycle,
            )
        )
    AccountValue.objects.bulk_create(
        rows,
        batch_size=BATCH_SIZE,
        update_conflicts=True,
        unique_fields=["account"],
        update_fields=_UPDATED_FIELDS,
    )
    return result


def run_insights_step(*, now: dt.datetime | None = None) -> InsightsResult | None:
    """The insights step under its lock; None when another run holds it."""
    with step_lock(STEP_LOCK) as acquired:
        if not acquired:
            return None
        return recompute_insights(now=now or timezone.now())
