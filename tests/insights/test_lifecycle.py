"""Lifecycle segments and the second-purchase figures against hand-computed values (quiet 90 days)."""

from accounts.models import Account
from insights.lifecycle import lifecycle_report, lifecycle_segment
from insights.models import Lifecycle
from insights.purchases import purchase_histories
from insights.recompute import recompute_insights
from tests.factories import AccountFactory
from tests.insights.conftest import T, buy, days_before

NAMES = ["purchase", "order", "invoice"]


def make(*purchase_days) -> Account:
    account = AccountFactory()
    for days in purchase_days:
        buy(account, days, 10)
    return account


def test_lifecycle_segments(value_settings):
    never = make()
    new = make(10)
    repeat = make(40, 10)
    regular = make(60, 40, 5)
    lapsed = make(90)  # exactly the quiet days: lapsed
    almost = make(89.9)  # just inside: still new
    reactivated = make(300, 20, 5)  # came back 20 days ago after 280 quiet days
    long_back = make(400, 250, 200, 150, 100, 50, 10)  # came back 250 days ago: regular again

    histories = purchase_histories(names=NAMES, as_of=T, quiet_days=90)

    def segment(account):
        return lifecycle_segment(histories.get(account.pk), as_of=T, quiet_days=90)

    assert segment(never) == ""
    assert segment(new) == Lifecycle.NEW
    assert segment(repeat) == Lifecycle.REPEAT
    assert segment(regular) == Lifecycle.REGULAR
    assert segment(lapsed) == Lifecycle.LAPSED
    assert segment(almost) == Lifecycle.NEW
    assert segment(reactivated) == Lifecycle.REACTIVATED
    assert segment(long_back) == Lifecycle.REGULAR
    assert histories[reactivated.pk].returned_at == days_before(20)
    assert histories[repeat.pk].second_at == days_before(10)
    assert histories[new.pk].second_at is None


def test_second_purchase_rate_and_days_to_it(value_settings):
    make()  # never bought: not a buyer
    make(10)
    make(40, 10)  # 30 days to the second
    make(60, 40, 5)  # 20
    make(90)
    make(300, 20)  # 280
    make(400, 250, 200)  # 150; lapsed (last bought 200 days ago)
    recompute_insights(now=T)

    report = lifecycle_report(accounts=Account.objects.all())

    assert report.buyers == 6
    assert report.second_purchasers == 4
    assert report.second_purchase_rate == 4 / 6
    assert report.median_days_to_second == 90.0  # 20, 30, 150, 280
    assert report.average_days_to_second == 120.0
    assert report.counts == {"new": 1, "repeat": 1, "regular": 1, "reactivated": 1, "lapsed": 2}


def test_empty_report(value_settings):
    report = lifecycle_report(accounts=Account.objects.all())
    assert report.buyers == 0
    assert report.second_purchase_rate is None
    assert report.median_days_to_second is None
    assert set(report.counts.values()) == {0}
