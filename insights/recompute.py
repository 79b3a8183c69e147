"""The insights pipeline step: every account's value figures as of now, stored in one upsert.

It runs after journeys and before health (``playbooks.pipeline``), so a scorecard or a playbook
reads this run's figures. Idempotent: a rerun with the same data writes the same rows, and an
account's RFM segment keeps its ``rfm_segment_since`` for as long as it stays in that segment,
which is what the ``segment_entered`` trigger keys on.

On PostgreSQL one statement computes the figures (``insights.figures_sql``), compares them with
the stored ones, carries the segment entry over and writes only the changed rows: no account's
figures or stored row comes to Python. Other databases (SQLite for ``make run``) compute the
figures in Python (``clv.account_figures``) and compare them there; the tests check that both
store the same.
"""

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from accounts.bulk import copy_insert
from accounts.locking import step_lock
from insights.clv import AccountFigures, account_figures
from insights.configuration import value_settings
from insights.figures_sql import FIGURES_SQL, figures_params
from insights.models import AccountValue, ValueSettings

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
# What the figures give (the segment entry and the previous segment come from the stored row).
_FIGURE_FIELDS = [
    name for name in _COMPARED_FIELDS if name not in ("rfm_segment_since", "previous_rfm_segment")
]
_SEGMENT = _COMPARED_FIELDS.index("rfm_segment")
_SINCE = _COMPARED_FIELDS.index("rfm_segment_since")
_BEFORE = _COMPARED_FIELDS.index("previous_rfm_segment")
_FIGURE_SEGMENT = _FIGURE_FIELDS.index("rfm_segment")


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

    Only the rows whose figures differ from the stored ones are written, with ``computed_at`` =
    ``now``; the others are left as they are (a daily run changes a few in a hundred: the
    recency, which moves for every buyer every day, is derived when read). Rewriting every row
    each day, to move the recency and the time, took most of this step at 1,000,000 accounts.
    """
    settings = value_settings()
    if connection.vendor == "postgresql":
        with transaction.atomic(savepoint=False):
            return store_figures_in_sql(now=now, settings=settings)
    # Computed before the write transaction, which SQLite holds as its one write lock.
    figures = account_figures(as_of=now, settings=settings)
    result = InsightsResult(
        accounts=len(figures), buyers=sum(f.history is not None for f in figures.values())
    )
    rows = [figure_row(pk, f) for pk, f in figures.items()]
    with transaction.atomic(savepoint=False):
        result.segment_changes, result.written = store_changed_in_python(rows, now=now)
    return result


def figure_row(pk: int, f: AccountFigures) -> tuple:
    """One account's figures as a plain row: its id, then the values of ``_FIGURE_FIELDS`` in order."""
    history, window = f.history, f.window
    if history is None:
        first_at = second_at = last_at = None
    else:
        first_at, second_at, last_at = history.first_at, history.second_at, history.last_at
    return (
        pk,
        history.purchases if history else 0,
        first_at,
        second_at,
        last_at,
        window.frequency if window else 0,
        window.monetary if window else 0,
        f.average_order_value,
        f.purchases_per_year,
        f.gross_margin,
        f.churn_rate,
        f.expected_lifetime_years,
        f.clv,
        window.r_score if window else None,
        window.f_score if window else None,
        window.m_score if window else None,
        f.rfm_segment,
        f.lifecycle,
    )


# A segment that changed (a stored row counts as "" when there is none) is entered now (or left
# for none) and remembers the one before; otherwise both are carried over from the stored row.
# A row is written when it is new or any compared figure differs (IS DISTINCT FROM: NULL-safe,
# column by column, numbers by value as in Python).
_UPSERT_SQL = """
WITH figures AS (
    {figures}
), compared AS (
    SELECT f.*,
           v.account_id IS NULL AS is_new,
           f.rfm_segment <> COALESCE(v.rfm_segment, '') AS segment_changed,
           CASE WHEN f.rfm_segment <> COALESCE(v.rfm_segment, '')
                THEN CASE WHEN f.rfm_segment <> '' THEN %(now)s::timestamptz END
                ELSE v.rfm_segment_since END AS new_since,
           CASE WHEN f.rfm_segment <> COALESCE(v.rfm_segment, '')
                THEN COALESCE(v.rfm_segment, '')
                ELSE COALESCE(v.previous_rfm_segment, '') END AS new_before,
           {stored}
    FROM figures f
    LEFT JOIN insights_accountvalue v ON v.account_id = f.account_id
), written AS (
    INSERT INTO insights_accountvalue (account_id, {columns})
    SELECT account_id, %(now)s::timestamptz, {values}
    FROM compared
    WHERE is_new OR ROW({stored_names}) IS DISTINCT FROM ROW({values})
    ON CONFLICT (account_id) DO UPDATE SET {updates}
    RETURNING 1
)
SELECT (SELECT COUNT(*) FROM compared),
       (SELECT COUNT(*) FROM compared WHERE purchases > 0),
       (SELECT COUNT(*) FROM compared WHERE segment_changed),
       (SELECT COUNT(*) FROM written)
"""


def _upsert_sql() -> str:
    quote = connection.ops.quote_name
    meta = AccountValue._meta
    computed = {"rfm_segment_since": "new_since", "previous_rfm_segment": "new_before"}
    compared = [meta.get_field(name).column for name in _COMPARED_FIELDS]
    columns = [quote(meta.get_field(name).column) for name in _UPDATED_FIELDS]
    return _UPSERT_SQL.format(
        figures=FIGURES_SQL,
        stored=", ".join(f"v.{quote(c)} AS {quote('stored_' + c)}" for c in compared),
        stored_names=", ".join(quote("stored_" + c) for c in compared),
        columns=", ".join(columns),
        values=", ".join(computed.get(name, quote(name)) for name in _COMPARED_FIELDS),
        updates=", ".join(f"{c} = EXCLUDED.{c}" for c in columns),
    )


def store_figures_in_sql(*, now: dt.datetime, settings: ValueSettings) -> InsightsResult:
    """PostgreSQL: compute every account's figures, compare and upsert them in one statement."""
    with connection.cursor() as cursor:
        # The purchases' sorts and every account's aggregates in memory, not in temporary files
        # (10 GB of them at 1,000,000 accounts with the default 4 MB), as the health recompute.
        cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute(_upsert_sql(), {**figures_params(as_of=now, settings=settings), "now": now})
        accounts, buyers, segment_changes, written = cursor.fetchone()
    return InsightsResult(accounts, buyers, segment_changes, written)


def store_changed_in_python(rows: Sequence[tuple], *, now: dt.datetime) -> tuple[int, int]:
    """Any database: read the stored rows, compare in Python, upsert the changed ones.

    Gives (segment changes, rows written); stores what ``store_figures_in_sql`` stores.
    """
    previous = {row[0]: row[1:] for row in AccountValue.objects.values_list("account_id", *_COMPARED_FIELDS)}
    segment_changes = 0
    changed = []
    for pk, *figures in rows:
        stored = previous.get(pk)
        old_segment, since, before = (
            (stored[_SEGMENT], stored[_SINCE], stored[_BEFORE]) if stored else ("", None, "")
        )
        segment = figures[_FIGURE_SEGMENT]
        if segment != old_segment:
            # A new segment (or none): remember where it came from and when it was entered.
            before, since = old_segment, (now if segment else None)
            segment_changes += 1
        values = dict(zip(_FIGURE_FIELDS, figures, strict=True))
        values.update(rfm_segment_since=since, previous_rfm_segment=before)
        compared = tuple(values[name] for name in _COMPARED_FIELDS)
        if stored is None or compared != stored:
            changed.append(AccountValue(account_id=pk, computed_at=now, **values))
    copy_insert(AccountValue, changed, unique_fields=["account"], update_fields=_UPDATED_FIELDS)
    return segment_changes, len(changed)


def run_insights_step(*, now: dt.datetime | None = None) -> InsightsResult | None:
    """The insights step under its lock; None when another run holds it."""
    with step_lock(STEP_LOCK) as acquired:
        if not acquired:
            return None
        return recompute_insights(now=now or timezone.now())
