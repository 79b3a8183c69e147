"""Helpers for the insights tests: purchases at hand-picked times before a fixed T."""

import datetime as dt
from decimal import Decimal

import pytest

from accounts.models import Event

T = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


def days_before(days: float) -> dt.datetime:
    return T - dt.timedelta(days=days)


def buy(account, days_ago: float, value, name: str = "purchase") -> Event:
    return Event.objects.create(
        account=account,
        name=name,
        occurred_at=days_before(days_ago),
        value=None if value is None else Decimal(str(value)),
    )


@pytest.fixture
def value_settings(db):
    from insights.configuration import value_settings

    return value_settings()
