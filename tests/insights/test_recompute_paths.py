"""The insights step's two paths (all in SQL on PostgreSQL, in Python elsewhere) store the same.

The tests run on PostgreSQL: each run is computed and stored both ways from the same stored state
(the SQL path rolled back) and the rows and counts are compared, over runs that add, change, keep
and empty segments, with margins and churn per segment, ties in the ranks and every lifecycle. And
the purchase histories and RFM windows read in SQL equal those read in Python (SQLite's path).
"""

import datetime as dt
import random
from decimal import Decimal

from django.db import connection, transaction

from accounts.models import Account, Event
from insights import configuration
from insights.clv import account_figures
from insights.models import AccountValue, Lifecycle, ValueSettings
from insights.purchases import _portable_histories, _portable_window, purchase_histories, window_purchases
from insights.recompute import figure_row, recompute_insights, store_changed_in_python, store_figures_in_sql
from tests.factories import AccountFactory
from tests.insights.conftest import T, buy

HOUR = dt.timedelta(hours=1)


class _Undo(Exception):
    pass


def _stored() -> list[tuple]:
    return list(AccountValue.objects.order_by("account_id").values_list())


def _in_sql(now: dt.datetime) -> tuple[int, ...]:
    result = store_figures_in_sql(now=now, settings=configuration.value_settings())
    return result.accounts, result.buyers, result.segment_changes, result.written


def _in_python(now: dt.datetime) -> tuple[int, ...]:
    figures = account_figures(as_of=now)
    rows = [figure_row(pk, f) for pk, f in figures.items()]
    buyers = sum(f.history is not None for f in figures.values())
    return len(figures), buyers, *store_changed_in_python(rows, now=now)


def _both_ways(now: dt.datetime) -> tuple:
    """Compute and store ``now``'s figures in SQL (rolled back), then in Python (kept); both outcomes."""
    outcomes = []
    for store, keep in ((_in_sql, False), (_in_python, True)):
        try:
            with transaction.atomic():
                counts = store(now)
                outcomes.append((counts, _stored()))
                if not keep:
                    raise _Undo
        except _Undo:
            pass
    return outcomes[0], outcomes[1]


def test_sql_and_python_store_the_same_rows_and_counts_run_after_run(value_settings):
    buyers = [AccountFactory() for _ in range(6)]
    never = AccountFactory(segment="ent")
    for i, account in enumerate(buyers):
        for days in range(1, 2 + i):
            buy(account, days * 37 + i, 25 * (i + 1))
    buy(buyers[0], 500, 80)  # before the window too

    sql, python = _both_ways(T)  # every row new
    assert sql == python
    assert python[0] == (7, 6, 6, 7)

    sql, python = _both_ways(T + HOUR)  # nothing changed: only the time moves
    assert sql == python
    assert python[0] == (7, 6, 0, 0)

    buy(buyers[5], 0.5, 5000)  # moves scores, so segments
    AccountValue.objects.filter(account=buyers[1]).update(clv=Decimal("1.23"))  # stale: rewritten
    AccountValue.objects.filter(account=never).update(rfm_segment="lost")  # back to no segment
    sql, python = _both_ways(T + 2 * HOUR)
    assert sql == python
    assert python[0][2] >= 2 and python[0][3] >= 3
    stored = AccountValue.objects.get(account=never)
    assert (stored.rfm_segment, stored.rfm_segment_since, stored.previous_rfm_segment) == ("", None, "lost")

    sql, python = _both_ways(T + 30 * 24 * HOUR)  # a month on: the ranks and lifecycles may move
    assert sql == python


def test_sql_and_python_compute_the_same_figures_over_varied_accounts(value_settings):
    """Segments with their own margins and churn, inexact divisions, ties, refunds, every lifecycle."""
    ValueSettings.objects.filter(pk=1).update(
        segment_margins={"smb": 0.6543, "mid": 0.30000000000000004, "ent": 1},
        window_days=97,
        quiet_days=45,
        max_lifetime_years=Decimal("12.5"),
    )
    rng = random.Random(7)
    accounts = []
    for i in range(60):
        churned = i % 9 == 0
        accounts.append(
            AccountFactory(
                segment=("smb", "mid", "ent", "other")[i % 4],
                status=Account.Status.CHURNED if churned else Account.Status.ACTIVE,
                churned_at=(T - dt.timedelta(days=rng.randrange(1, 300))).date() if churned else None,
            )
        )
    for account in accounts[:50]:
        for _ in range(rng.randrange(1, 9)):
            amount = rng.choice([10, 10, 33.33, 99.99, 1234.56, -5, 0.01])  # repeated amounts: ties
            buy(account, rng.choice([0.2, 3, 3, 20, 44.9, 45, 60, 96.99, 130, 400]), amount)
    stored, seen = [], []
    for now in (T, T + HOUR, T + dt.timedelta(days=41)):
        sql, python = _both_ways(now)
        assert sql == python
        stored.append(python[1])
        seen.extend(AccountValue.objects.all())

    assert stored[0] != stored[2]  # the later run moved figures
    assert {v.lifecycle for v in seen} >= {"", *Lifecycle.values}
    assert len({v.rfm_segment for v in seen}) >= 6
    assert {v.gross_margin for v in seen} >= {Decimal("0.654"), Decimal("0.300"), Decimal("1.000")}
    assert len({v.churn_rate for v in seen}) >= 2
    assert len({v.expected_lifetime_years for v in seen}) >= 2
    assert any(v.window_value < 0 for v in seen)


def test_a_clv_on_a_half_cent_is_rounded_up_both_ways(value_settings):
    """1.10 a year of 90 days x 0.7 x 9 years (1 in 9 churned) = 28.105 exactly: 28.11, not 28.10."""
    ValueSettings.objects.filter(pk=1).update(window_days=90)
    accounts = [AccountFactory(segment="smb") for _ in range(8)]
    AccountFactory(
        segment="smb", status=Account.Status.CHURNED, churned_at=(T - dt.timedelta(days=30)).date()
    )
    buy(accounts[0], 1, "1.10")

    sql, python = _both_ways(T)

    assert sql == python
    assert AccountValue.objects.get(account=accounts[0]).clv == Decimal("28.11")


def test_a_figure_with_more_places_than_its_column_is_rewritten_both_ways(value_settings):
    account = AccountFactory(segment="smb")
    buy(account, 3, 10)
    ValueSettings.objects.filter(pk=1).update(segment_margins={"smb": 0.6543})  # stored as 0.654
    recompute_insights(now=T)

    sql, python = _both_ways(T + HOUR)

    assert sql == python
    assert python[0][2:] == (0, 1)  # the figure (0.6543) never equals the stored one (0.654)
    assert AccountValue.objects.get(account=account).gross_margin == Decimal("0.654")


def test_histories_read_in_sql_equal_those_read_in_python(db):
    account, other = AccountFactory(), AccountFactory()
    for days in (400.123456, 200.5, 10.000001, 9.75):
        buy(account, days, 10)
    buy(other, 1.25, 30)
    Event.objects.create(
        account=other, name="purchase", occurred_at=T - dt.timedelta(microseconds=1), value=1
    )
    buy(other, 0.5, None)  # no value: not a purchase

    kwargs = {"names": ["purchase"], "as_of": T, "quiet_days": 90}
    histories = purchase_histories(**kwargs)

    assert histories == _portable_histories(**kwargs)
    assert histories[other.pk].last_at == T - dt.timedelta(microseconds=1)
    assert histories[account.pk].returned_at == T - dt.timedelta(days=10.000001)  # after 190 days
    assert all(h.first_at.tzinfo is connection.timezone for h in histories.values())


def test_windows_read_in_sql_equal_those_read_in_python(db):
    """The RFM window as SQLite reads it (``_portable_window``) equals the SQL one: ties share a score."""
    rng = random.Random(3)
    for account in [AccountFactory() for _ in range(25)]:
        for _ in range(rng.randrange(1, 6)):
            buy(account, rng.choice([0.5, 2, 2, 9.99, 30, 64, 65, 200]), rng.choice([10, 10, 20, -3, 99.5]))

    kwargs = {"names": ["purchase"], "as_of": T, "window_days": 64}
    windows = window_purchases(**kwargs)

    assert windows == _portable_window(**kwargs)
    assert len({w.r_score for w in windows.values()}) >= 3
