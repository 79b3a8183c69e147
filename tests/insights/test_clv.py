"""CLV against hand-computed values (window 365 days, margin 0.7 by default, lifetime cap 10)."""

import datetime as dt
from decimal import Decimal

from insights.clv import account_figures, segment_churn_rates
from tests.factories import AccountFactory
from tests.insights.conftest import T, buy


def test_clv_is_aov_times_frequency_times_margin_times_lifetime(value_settings):
    a = AccountFactory(segment="smb")
    b = AccountFactory(segment="smb")
    never = AccountFactory(segment="smb")
    gone = AccountFactory(segment="smb", status="churned", churned_at=dt.date(2026, 5, 2))
    for days, value in ((10, 100), (100, 200), (300, 300)):
        buy(a, days, value)
    buy(b, 5, 50, name="invoice")  # a single purchase
    buy(gone, 400, 1000)  # before the window
    buy(a, 1, None, name="order")  # no value: not a purchase
    buy(a, 1, 999, name="login")  # not a value event

    figures = account_figures(as_of=T)

    # smb: 4 customers over the year before T, 1 churned → rate 0.25, lifetime 4 years.
    fa = figures[a.pk]
    assert fa.churn_rate == Decimal("0.2500")
    assert fa.expected_lifetime_years == Decimal("4.00")
    assert fa.average_order_value == Decimal("200.00")
    assert fa.purchases_per_year == Decimal("3.0000")
    assert fa.gross_margin == Decimal("0.700")
    assert fa.clv == Decimal("1680.00")  # 200 x 3 x 0.7 x 4
    assert figures[b.pk].clv == Decimal("140.00")  # 50 x 1 x 0.7 x 4
    assert figures[b.pk].average_order_value == Decimal("50.00")
    assert figures[never.pk].clv is None
    assert figures[never.pk].average_order_value is None
    assert figures[gone.pk].clv == Decimal("0.00")  # bought, but not in the window
    assert figures[gone.pk].purchases_per_year == Decimal(0)


def test_segment_margin_and_no_churn_use_the_settings(value_settings):
    value_settings.segment_margins = {"enterprise": 0.8}
    value_settings.save()
    e = AccountFactory(segment="enterprise")
    buy(e, 30, 500, name="order")
    buy(e, 60, 500, name="order")

    f = account_figures(as_of=T)[e.pk]

    assert f.gross_margin == Decimal("0.8")
    assert f.churn_rate == Decimal("0.0000")
    assert f.expected_lifetime_years == Decimal("10.00")  # no churn: the cap
    assert f.clv == Decimal("8000.00")  # 500 x 2 x 0.8 x 10


def test_frequency_is_per_year_whatever_the_window(value_settings):
    value_settings.window_days = 730
    value_settings.save()
    a = AccountFactory(segment="smb")
    buy(a, 10, 100)
    buy(a, 500, 300)

    f = account_figures(as_of=T)[a.pk]

    assert f.purchases_per_year == Decimal("1.0000")  # 2 purchases in two years
    assert f.average_order_value == Decimal("200.00")
    assert f.clv == Decimal("1400.00")  # 200 x 1 x 0.7 x 10


def test_churn_rate_counts_only_the_year_before_t_and_caps_the_lifetime(db):
    AccountFactory(segment="mid", status="churned", churned_at=dt.date(2026, 1, 10))
    AccountFactory(segment="mid", status="churned", churned_at=dt.date(2024, 1, 10))  # long gone
    AccountFactory(segment="mid", status="churned", churned_at=None)  # unknown: left out
    AccountFactory(segment="mid", contract_start=dt.date(2026, 7, 1))  # not a customer yet at T
    AccountFactory(segment="mid")
    AccountFactory(segment="big", status="churned", churned_at=dt.date(2026, 3, 1))
    AccountFactory(segment="big", status="churned", churned_at=dt.date(2026, 4, 1))
    AccountFactory(segment="big", status="churned", churned_at=dt.date(2026, 6, 1))  # on T: after

    rates = segment_churn_rates(as_of=T, max_lifetime_years=Decimal(10))

    assert (rates["mid"].customers, rates["mid"].churned) == (2, 1)
    assert rates["mid"].rate == Decimal("0.5000")
    assert rates["mid"].lifetime_years == Decimal("2.00")
    assert rates["big"].rate == Decimal("0.6667")
    assert rates["big"].lifetime_years == Decimal("1.50")  # 1 / 0.6667, to two places


def test_no_accounts_no_figures(db):
    assert account_figures(as_of=T) == {}
