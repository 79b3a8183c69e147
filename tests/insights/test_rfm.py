"""RFM quintiles and named segments against hand-computed values."""

import pytest

from insights.models import RfmSegment
from insights.purchases import WindowPurchases, window_purchases
from insights.rfm import rfm_segment
from tests.factories import AccountFactory
from tests.insights.conftest import T, buy

NAMES = ["purchase", "order", "invoice"]


def scores(window_days: int = 365) -> dict[int, tuple[int, int, int]]:
    rows = window_purchases(names=NAMES, as_of=T, window_days=window_days)
    return {pk: (w.r_score, w.f_score, w.m_score) for pk, w in rows.items()}


def test_five_distinct_accounts_score_one_to_five(db):
    # (days ago of each purchase, value of each purchase)
    a1 = AccountFactory()
    for days in (1, 2, 3, 4, 5):
        buy(a1, days, 100)  # recency 1, frequency 5, monetary 500
    a2 = AccountFactory()
    for days in (10, 20, 30, 40):
        buy(a2, days, 50)  # 10, 4, 200
    a3 = AccountFactory()
    for days in (50, 60, 70):
        buy(a3, days, 10)  # 50, 3, 30
    a4 = AccountFactory()
    for days in (100, 150):
        buy(a4, days, 400)  # 100, 2, 800
    a5 = AccountFactory()
    buy(a5, 200, 60)  # 200, 1, 60
    outside = AccountFactory()
    buy(outside, 400, 10_000)  # before the window: not ranked

    windows = window_purchases(names=NAMES, as_of=T, window_days=365)

    assert (windows[a1.pk].recency_days, windows[a1.pk].frequency) == (1, 5)
    assert str(windows[a4.pk].monetary) == "800.00"
    assert {pk: (w.r_score, w.f_score, w.m_score) for pk, w in windows.items()} == {
        a1.pk: (5, 5, 4),
        a2.pk: (4, 4, 3),
        a3.pk: (3, 3, 1),
        a4.pk: (2, 2, 5),
        a5.pk: (1, 1, 2),
    }
    segments = {pk: rfm_segment(w, bought_before=True) for pk, w in windows.items()}
    assert segments == {
        a1.pk: RfmSegment.CHAMPIONS,
        a2.pk: RfmSegment.LOYAL,
        a3.pk: RfmSegment.POTENTIAL_LOYALISTS,
        a4.pk: RfmSegment.AT_RISK,
        a5.pk: RfmSegment.LOST,
    }


def test_tied_values_share_the_higher_score_whatever_the_ids(db):
    accounts = [AccountFactory() for _ in range(4)]
    for account, purchases in zip(accounts, (1, 1, 2, 3), strict=True):
        for i in range(purchases):
            buy(account, 10 + i, 100)  # same recency for all: 10 days

    result = scores()

    # n = 4; frequency 1 is at least as good as 2 of 4 → ceil(5 x 2/4) = 3; 2 → 4; 3 → 5.
    assert [result[a.pk][1] for a in accounts] == [3, 3, 4, 5]
    # All last bought 10 days ago: one tie, everybody scores 5 on recency.
    assert {result[a.pk][0] for a in accounts} == {5}
    # monetary 100, 100, 200, 300 ranks like frequency.
    assert [result[a.pk][2] for a in accounts] == [3, 3, 4, 5]


def test_a_single_buyer_scores_five_and_is_new(db):
    only = AccountFactory()
    buy(only, 3, 20)

    windows = window_purchases(names=NAMES, as_of=T, window_days=365)

    assert (windows[only.pk].r_score, windows[only.pk].f_score, windows[only.pk].m_score) == (5, 5, 5)
    assert rfm_segment(windows[only.pk], bought_before=True) == RfmSegment.NEW


def test_empty_window_has_no_scores(db):
    AccountFactory()
    assert window_purchases(names=NAMES, as_of=T, window_days=365) == {}


def _w(r: int, f: int, m: int, frequency: int = 5) -> WindowPurchases:
    return WindowPurchases(recency_days=1, frequency=frequency, monetary=1, r_score=r, f_score=f, m_score=m)


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        (_w(5, 5, 5, frequency=1), RfmSegment.NEW),
        (_w(4, 1, 1, frequency=1), RfmSegment.NEW),
        (_w(5, 4, 4), RfmSegment.CHAMPIONS),
        (_w(2, 4, 4), RfmSegment.CANT_LOSE),
        (_w(1, 5, 5), RfmSegment.CANT_LOSE),
        (_w(2, 3, 1), RfmSegment.AT_RISK),
        (_w(1, 1, 3), RfmSegment.AT_RISK),
        (_w(2, 2, 2), RfmSegment.HIBERNATING),
        (_w(1, 2, 2), RfmSegment.LOST),
        (_w(3, 4, 1), RfmSegment.LOYAL),
        (_w(5, 4, 3), RfmSegment.LOYAL),
        (_w(3, 3, 5), RfmSegment.POTENTIAL_LOYALISTS),
        (_w(4, 2, 2), RfmSegment.POTENTIAL_LOYALISTS),
    ],
)
def test_named_segment_rules(window, expected):
    assert rfm_segment(window, bought_before=True) == expected


def test_no_purchase_in_the_window_is_lost_and_never_bought_has_no_segment():
    assert rfm_segment(None, bought_before=True) == RfmSegment.LOST
    assert rfm_segment(None, bought_before=False) == ""
