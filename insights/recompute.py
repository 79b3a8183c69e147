"""The insights pipeline step: every account's value figures as of now, stored in one upsert.

It runs after journeys and before health (``playbooks.pipeline``), so a scorecard or a playbook
reads this run's figures. Idempotent: a rerun with the same data writes the same rows, and an
account's RFM segment keeps its ``rfm_segment_since`` for as long as it stays in that segment,
which is what the ``segment_entered`` trigger keys on.
"""

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone

from accounts.bulk import copy_insert
from accounts.locking import step_lock
from insights.clv import AccountFigures, account_figures
from insights.models import AccountValue

STEP_LOCK = "insights.recompute"

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
# Everything but the time: a row whose figures are all equal is not rewritten.
_COMPARED_FIELDS = [name for name in _UPDATED_FIELDS if name != "computed_at"]
_SEGMENT = _COMPARED_FIELDS.index("rfm_segment")
_SINCE = _COMPARED_FIELDS.index("rfm_segment_since")
_BEFORE = _COMPARED_FIELDS.index("previous_rfm_segment")


@dataclass
class InsightsResult:
    accounts: int = 0
    buyers: int = 0
    segment_changes: int = 0
    written: int = 0  # rows whose figures changed

    def counts(self) -> dict[str, int]:
        return {
            "accounts": self.accounts,
            "buyers": self.buyers,
            "segment_changes": self.segment_changes,
            "written": self.written,
        }


def recompute_insights(*, now: dt.datetime) -> InsightsResult:
    """Compute every account's figures as of ``now`` and store those that changed; return what changed.

    Only the rows whose figures differ from the stored ones are written (a 15-minute run changes
    few); the others get this run's ``computed_at`` in one set-based UPDATE.
    """
    figures = account_figures(as_of=now)
    previous = {row[0]: row[1:] for row in AccountValue.objects.values_list("account_id", *_COMPARED_FIELDS)}
    result = InsightsResult(accounts=len(figures))
    rows = []
    for pk, f in figures.items():
        stored = previous.get(pk)
        old_segment, since, before = (
            (stored[_SEGMENT], stored[_SINCE], stored[_BEFORE]) if stored else ("", None, "")
        )
        if f.rfm_segment != old_segment:
            # A new segment (or none): remember where it came from and when it was entered.
            before, since = old_segment, (now if f.rfm_segment else None)
            result.segment_changes += 1
        result.buyers += f.history is not None
        row = _account_value(pk, f, now=now, since=since, before=before)
        if stored is None or _compared(row) != stored:
            rows.append(row)
    copy_insert(AccountValue, rows, unique_fields=["account"], update_fields=_UPDATED_FIELDS)
    AccountValue.objects.exclude(computed_at=now).update(computed_at=now)
    result.written = len(rows)
    return result


def _account_value(
    pk: int, f: AccountFigures, *, now: dt.datetime, since: dt.datetime | None, before: str
) -> AccountValue:
    history, window = f.history, f.window
    return AccountValue(
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


def _compared(row: AccountValue) -> tuple:
    """The stored figures of a row, in ``_COMPARED_FIELDS`` order (compared with what is stored)."""
    return tuple(getattr(row, name) for name in _COMPARED_FIELDS)


def run_insights_step(*, now: dt.datetime | None = None) -> InsightsResult | None:
    """The insights step under its lock; None when another run holds it."""
    with step_lock(STEP_LOCK) as acquired:
        if not acquired:
            return None
        return recompute_insights(now=now or timezone.now())
