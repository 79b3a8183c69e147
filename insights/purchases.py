"""Purchases: the events that carry a value, read in one SQL statement over all accounts.

A purchase is an event whose name is one of the settings' ``value_events`` and whose ``value`` is
set (an order without an amount is not counted). Only events before T count, so every figure here
can be taken as of any time T.
"""

import datetime as dt
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection

DAY_SECONDS = 86400


@dataclass(frozen=True)
class PurchaseHistory:
    """Everything an account bought before T (lifecycle, second-purchase rate)."""

    purchases: int
    first_at: dt.datetime
    second_at: dt.datetime | None
    last_at: dt.datetime
    returned_at: dt.datetime | None  # the latest purchase made after a gap of at least quiet_days


@dataclass(frozen=True)
class WindowPurchases:
    """What an account bought in ``[T - window, T)`` and its RFM quintile scores (1 to 5, 5 best)."""

    recency_days: int
    frequency: int
    monetary: Decimal
    r_score: int
    f_score: int
    m_score: int


# The purchases before T: events whose name is a value event and whose value is set.
_PURCHASES_BEFORE = """
SELECT account_id, occurred_at, id, value
FROM accounts_event
WHERE name = ANY(%(names)s) AND value IS NOT NULL AND occurred_at < %(as_of)s"""

# Per account, its purchases before T (``purchases``, each with its rank and the time of the one
# before) and their counts and key moments (``moments``). Shared with the figures computed in SQL
# (``insights.figures_sql``), whose RFM window reads ``purchases`` too: one scan of the events.
HISTORY_CTES = f"""
purchases AS (
    SELECT *,
           ROW_NUMBER() OVER w AS n,
           LAG(occurred_at) OVER w AS previous_at
    FROM ({_PURCHASES_BEFORE}) p
    WINDOW w AS (PARTITION BY account_id ORDER BY occurred_at, id)
), moments AS (
    SELECT account_id,
           COUNT(*) AS purchases,
           MIN(occurred_at) AS first_at,
           MIN(occurred_at) FILTER (WHERE n = 2) AS second_at,
           MAX(occurred_at) AS last_at,
           MAX(occurred_at) FILTER (WHERE occurred_at - previous_at >= %(quiet)s) AS returned_at
    FROM purchases
    GROUP BY account_id
)"""

_HISTORY_SQL = f"""
WITH {HISTORY_CTES}
SELECT account_id, purchases,
       (EXTRACT(EPOCH FROM first_at) * 1000000)::bigint,
       (EXTRACT(EPOCH FROM second_at) * 1000000)::bigint,
       (EXTRACT(EPOCH FROM last_at) * 1000000)::bigint,
       (EXTRACT(EPOCH FROM returned_at) * 1000000)::bigint
FROM moments
"""
# The moments come as microseconds since the epoch (exact): a timestamptz goes through Django's
# Python loader, which took most of the time of this query's ~4 per buyer; see _moment_reader.

# Quintile scores by cumulative share, in integers: score = ceil(5 x k / n), where n is the number
# of accounts with a purchase in the window and k the number whose value is at most this one's
# (for recency: whose last purchase is as old or older). Tied values share a score (the higher
# one), whatever the account ids, and the best value always scores 5.
_WINDOW_RANKS = """
windowed AS (
    SELECT account_id,
           COUNT(*) AS frequency,
           SUM(value) AS monetary,
           FLOOR(EXTRACT(EPOCH FROM (%(as_of)s - MAX(occurred_at))) / %(day)s)::int AS recency_days
    FROM {purchases}
    WHERE occurred_at >= %(start)s
    GROUP BY account_id
), counted AS (
    SELECT *,
           COUNT(*) OVER () AS n,
           COUNT(*) OVER (ORDER BY recency_days DESC) AS r_k,
           COUNT(*) OVER (ORDER BY frequency) AS f_k,
           COUNT(*) OVER (ORDER BY monetary) AS m_k
    FROM windowed
), scored AS (
    SELECT account_id, recency_days, frequency, monetary,
           (5 * r_k + n - 1) / n AS r_score,
           (5 * f_k + n - 1) / n AS f_score,
           (5 * m_k + n - 1) / n AS m_score
    FROM counted
)"""
# ``scored``: each account's window and its scores, from the events; and from the ``purchases``
# of ``HISTORY_CTES``, for a statement that has them already.
WINDOW_CTES = _WINDOW_RANKS.format(purchases=f"({_PURCHASES_BEFORE}) p")
WINDOW_OF_PURCHASES_CTES = _WINDOW_RANKS.format(purchases="purchases")

_WINDOW_SQL = f"""
WITH {WINDOW_CTES}
SELECT account_id, recency_days, frequency, monetary, r_score, f_score, m_score
FROM scored
"""


def window_params(*, as_of: dt.datetime, window_days: int) -> dict:
    """The parameters of ``WINDOW_CTES`` but the event names."""
    return {"as_of": as_of, "start": as_of - dt.timedelta(days=window_days), "day": DAY_SECONDS}


def purchase_histories(
    *, names: list[str], as_of: dt.datetime, quiet_days: int
) -> dict[int, PurchaseHistory]:
    """Per account with at least one purchase before ``as_of``: counts and key moments."""
    if connection.vendor != "postgresql":
        return _portable_histories(names=names, as_of=as_of, quiet_days=quiet_days)
    with connection.cursor() as cursor:
        cursor.execute(
            _HISTORY_SQL, {"names": list(names), "as_of": as_of, "quiet": dt.timedelta(days=quiet_days)}
        )
        rows = cursor.fetchall()
    moment = _moment_reader()
    return {
        pk: PurchaseHistory(count, moment(first), moment(second), moment(last), moment(returned))
        for pk, count, first, second, last, returned in rows
    }


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _moment_reader() -> Callable[[int | None], dt.datetime | None]:
    """Microseconds since the epoch → the datetime the connection would have loaded (its zone)."""
    zone = connection.timezone

    def moment(micros: int | None) -> dt.datetime | None:
        if micros is None:
            return None
        utc = _EPOCH + dt.timedelta(microseconds=micros)
        return utc if zone is dt.UTC else utc.astimezone(zone)

    return moment


def window_purchases(*, names: list[str], as_of: dt.datetime, window_days: int) -> dict[int, WindowPurchases]:
    """Per account with a purchase in ``[as_of - window_days, as_of)``: R, F, M and their scores."""
    if connection.vendor != "postgresql":
        return _portable_window(names=names, as_of=as_of, window_days=window_days)
    params = {"names": list(names), **window_params(as_of=as_of, window_days=window_days)}
    with connection.cursor() as cursor:
        cursor.execute(_WINDOW_SQL, params)
        return {row[0]: WindowPurchases(*row[1:]) for row in cursor.fetchall()}


# --- the same in Python, for SQLite (``make run``'s embedded default, demo-sized data) -----------


def _purchases(names: list[str], start: dt.datetime | None, as_of: dt.datetime):
    from accounts.models import Event

    events = Event.objects.filter(name__in=names, value__isnull=False, occurred_at__lt=as_of)
    if start is not None:
        events = events.filter(occurred_at__gte=start)
    return events.order_by("account_id", "occurred_at", "id").values_list(
        "account_id", "occurred_at", "value"
    )


def _portable_histories(
    *, names: list[str], as_of: dt.datetime, quiet_days: int
) -> dict[int, PurchaseHistory]:
    quiet = dt.timedelta(days=quiet_days)
    moments: dict[int, list[dt.datetime]] = {}
    for account_id, occurred_at, _ in _purchases(names, None, as_of).iterator():
        moments.setdefault(account_id, []).append(occurred_at)
    histories = {}
    for account_id, times in moments.items():
        returns = [later for earlier, later in itertools.pairwise(times) if later - earlier >= quiet]
        histories[account_id] = PurchaseHistory(
            len(times), times[0], times[1] if len(times) > 1 else None, times[-1], max(returns, default=None)
        )
    return histories


def _portable_window(*, names: list[str], as_of: dt.datetime, window_days: int) -> dict[int, WindowPurchases]:
    start = as_of - dt.timedelta(days=window_days)
    bought: dict[int, list] = {}
    for account_id, occurred_at, value in _purchases(names, start, as_of).iterator():
        row = bought.setdefault(account_id, [0, Decimal(0), occurred_at])
        row[0] += 1
        row[1] += value
        row[2] = max(row[2], occurred_at)
    figures = {
        pk: (int((as_of - last).total_seconds() // DAY_SECONDS), count, total)
        for pk, (count, total, last) in bought.items()
    }
    n = len(figures)

    def score(k: int) -> int:  # ceil(5 k / n), as in _WINDOW_SQL
        return (5 * k + n - 1) // n

    recencies = [r for r, _, _ in figures.values()]
    frequencies = [f for _, f, _ in figures.values()]
    monetaries = [m for _, _, m in figures.values()]
    return {
        pk: WindowPurchases(
            r,
            f,
            m,
            score(sum(1 for other in recencies if other >= r)),
            score(sum(1 for other in frequencies if other <= f)),
            score(sum(1 for other in monetaries if other <= m)),
        )
        for pk, (r, f, m) in figures.items()
    }
