"""Metrics of one source read together (``metrics.streams``) give exactly what each reads alone.

The reference is each metric's own query (``METRICS[key].compute``, one query per metric); the
shared pass reads the rollup and the raw events once for all of them and splits the rows back.
"""

import datetime as dt
import random

import pytest
from django.db.models import Max

from accounts.models import Account, Event
from health.metrics import METRICS, streams
from tests.factories import AccountFactory
from tests.health.conftest import at, events

pytestmark = pytest.mark.django_db

REQUESTS = [
    ("active_days", {"event": "login", "days": 30}),
    ("active_days", {"event": "login", "days": 1}),
    ("active_days", {"event": "export", "days": 2}),
    ("event_count", {"event": "login", "days": 30}),
    ("event_count", {"event": "export", "days": 1}),
    ("event_count", {"event": "login", "days": 7}),
    ("event_value_sum", {"event": "order_placed", "days": 7}),
    ("event_value_sum", {"event": "order_placed", "days": 1}),
    ("usage_trend", {"event": "login", "days": 30}),
    ("usage_trend", {"event": "login", "days": 1}),
    ("usage_trend", {"event": "export", "days": 3}),
    ("days_since_last_event", {"event": "login"}),  # not a window metric: read on its own
]

AS_OF = [
    at("2026-03-10 12:00"),  # mid-day: partial days at both ends of every window
    at("2026-03-10 00:00"),  # midnight: whole days only
    at("2026-03-09 23:59"),  # a one-day window over two UTC days: one partial part
    at("2026-01-20 06:30"),  # before most of the data: many windows empty
]


@pytest.fixture
def busy_accounts() -> list[Account]:
    """Six accounts with random events over ~80 days, at random minutes, some with values."""
    rng = random.Random(7)
    accounts = [AccountFactory(external_id=f"a{i}") for i in range(6)]
    start = at("2026-01-01 00:00")
    for account in accounts[:-1]:  # the last account has no events at all
        rows = []
        for _ in range(rng.randint(5, 60)):
            when = start + dt.timedelta(minutes=rng.randint(0, 80 * 24 * 60))
            name = rng.choice(["login", "login", "export", "order_placed"])
            value = f"{rng.randint(-5, 300)}.{rng.randint(0, 99):02d}" if name == "order_placed" else None
            rows.append((name, when.strftime("%Y-%m-%d %H:%M"), None, value))
        # events on both sides of midnight, and at as-of times exactly
        rows += [
            ("login", "2026-03-09 23:30", None, None),
            ("login", "2026-03-10 00:00", None, None),
            ("export", "2026-03-10 12:00", None, None),
            ("order_placed", "2026-03-09 12:00", None, "0"),
        ]
        events(account, *rows)
    return accounts


@pytest.mark.parametrize("as_of", AS_OF)
def test_shared_streams_equal_each_metric_read_alone(busy_accounts, as_of):
    together = [list(s) for s in streams(REQUESTS, as_of=as_of)]
    alone = [
        list(METRICS[key].compute(params, as_of=as_of, accounts=Account.objects.all()))
        for key, params in REQUESTS
    ]
    assert together == alone
    assert any(together[:-1])  # the data reaches the windows


def test_a_scope_limits_the_shared_pass(busy_accounts):
    scope = Account.objects.filter(pk__in=[a.pk for a in busy_accounts[:2]])
    together = streams(REQUESTS[:3], as_of=AS_OF[0], accounts=scope)
    assert {pk for s in together for pk, _ in s} <= set(scope.values_list("pk", flat=True))


def test_window_metrics_of_one_computation_are_one_query(busy_accounts, django_assert_num_queries):
    window_requests = [r for r in REQUESTS if r[0] != "days_since_last_event"]
    with django_assert_num_queries(1):
        results = [list(s) for s in streams(window_requests, as_of=AS_OF[0])]
    assert len(results) == len(window_requests)


@pytest.mark.parametrize("as_of", AS_OF)
def test_days_since_last_event_is_each_accounts_newest_event_before_t(busy_accounts, as_of):
    newest = dict(
        Event.objects.filter(name="login", occurred_at__lt=as_of)
        .values("account_id")
        .annotate(last=Max("occurred_at"))
        .values_list("account_id", "last")
    )
    readings = list(streams([("days_since_last_event", {"event": "login"})], as_of=as_of)[0])
    assert [pk for pk, _ in readings] == sorted(newest)  # by account, only accounts with a login
    for pk, reading in readings:
        assert reading.data_at == newest[pk]
        assert reading.value == (as_of - newest[pk]) // dt.timedelta(days=1)
