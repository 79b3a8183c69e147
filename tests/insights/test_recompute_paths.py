"""The insights step's two ways of storing (in SQL on PostgreSQL, in Python elsewhere) store the same.

The tests run on PostgreSQL: each run is stored both ways from the same stored state (the first
way rolled back) and the rows and counts are compared, over runs that add, change, keep and
empty segments. And the purchase histories read in SQL equal those read in Python.
"""

import datetime as dt
from decimal import Decimal

from django.db import connection, transaction

from accounts.models import Event
from insights.clv import account_figures
from insights.models import AccountValue, ValueSettings
from insights.purchases import _portable_histories, purchase_histories
from insights.recompute import figure_row, recompute_insights, store_changed_in_python, store_changed_in_sql
from tests.factories import AccountFactory
from tests.insights.conftest import T, buy

HOUR = dt.timedelta(hours=1)


class _Undo(Exception):
    pass


def _stored() -> list[tuple]:
    return list(AccountValue.objects.order_by("account_id").values_list())


def _both_ways(now: dt.datetime) -> tuple:
    """Store ``now``'s figures in SQL (rolled back), then in Python (kept); both outcomes."""
    rows = [figure_row(pk, f) for pk, f in account_figures(as_of=now).items()]
    outcomes = []
    for store, keep in ((store_changed_in_sql, False), (store_changed_in_python, True)):
        try:
            with transaction.atomic():
                counts = store(rows, now=now)
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
    assert python[0] == (6, 7)

    sql, python = _both_ways(T + HOUR)  # nothing changed: only the time moves
    assert sql == python
    assert python[0] == (0, 0)

    buy(buyers[5], 0.5, 5000)  # moves scores, so segments
    AccountValue.objects.filter(account=buyers[1]).update(clv=Decimal("1.23"))  # stale: rewritten
    AccountValue.objects.filter(account=never).update(rfm_segment="lost")  # back to no segment
    sql, python = _both_ways(T + 2 * HOUR)
    assert sql == python
    assert python[0][0] >= 2 and python[0][1] >= 3
    stored = AccountValue.objects.get(account=never)
    assert (stored.rfm_segment, stored.rfm_segment_since, stored.previous_rfm_segment) == ("", None, "lost")

    sql, python = _both_ways(T + 30 * 24 * HOUR)  # a month on: the ranks and lifecycles may move
    assert sql == python


def test_a_figure_with_more_places_than_its_column_is_rewritten_both_ways(value_settings):
    account = AccountFactory(segment="smb")
    buy(account, 3, 10)
    ValueSettings.objects.filter(pk=1).update(segment_margins={"smb": 0.6543})  # stored as 0.654
    recompute_insights(now=T)

    sql, python = _both_ways(T + HOUR)

    assert sql == python
    assert python[0] == (0, 1)  # the figure (0.6543) never equals the stored one (0.654)
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
