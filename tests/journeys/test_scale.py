"""The pass runs a number of queries that does not grow with the number of accounts."""

import datetime as dt
import random

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts import bulk
from accounts.models import Account, EventDaily
from journeys.evaluation import evaluate_journeys
from journeys.models import Milestone, StageChange
from tests.journeys.conftest import T0

MAX_QUERIES = 40


def make_accounts(count: int) -> None:
    """A mix of new, established, renewing and churned accounts, with some usage."""
    rng = random.Random(count)
    accounts = []
    for i in range(count):
        kind = i % 4
        start = T0.date() - dt.timedelta(days=rng.randint(0, 60) if kind == 0 else rng.randint(100, 900))
        renewal = T0.date() + dt.timedelta(days=rng.randint(10, 360))
        accounts.append(
            Account(
                external_id=f"scale-{count}-{i}",
                name=f"Scale {i}",
                segment="self-serve" if i % 10 == 0 else "smb",
                contract_start=start,
                renewal_date=renewal,
                status="churned" if kind == 3 else "active",
                churned_at=T0.date() - dt.timedelta(days=5) if kind == 3 else None,
            )
        )
    Account.objects.bulk_create(accounts, batch_size=5000)
    rows = [
        EventDaily(account=account, name=name, day=T0.date() - dt.timedelta(days=d), count=rng.randint(1, 5))
        for account in Account.objects.filter(external_id__startswith=f"scale-{count}-")[: count // 2]
        for name in ("login", "report_viewed")
        for d in range(0, 40, 3)
    ]
    EventDaily.objects.bulk_create(rows, batch_size=10000)


def count_queries(now: dt.datetime):
    with CaptureQueriesContext(connection) as ctx:
        changes = evaluate_journeys(now=now)
    return len(ctx.captured_queries), changes


@pytest.mark.parametrize("accounts", [100, 10_000])
def test_evaluation_queries_do_not_grow_with_the_number_of_accounts(
    db, accounts, django_assert_max_num_queries
):
    make_accounts(accounts)
    with django_assert_max_num_queries(MAX_QUERIES):
        first = evaluate_journeys(now=T0)
    assert len({c.account_id for c in first.stages_entered}) == accounts
    assert Account.objects.filter(stage="").count() == 0
    # A later pass with work to do (overdue milestones, renewals, max durations) is bounded too.
    with django_assert_max_num_queries(MAX_QUERIES):
        later = evaluate_journeys(now=T0 + dt.timedelta(days=45))
    assert later
    # And a repeated pass finds nothing to do.
    with django_assert_max_num_queries(MAX_QUERIES):
        assert not evaluate_journeys(now=T0 + dt.timedelta(days=45))
    assert StageChange.objects.count() >= accounts
    assert Milestone.objects.exists()


def test_the_query_count_is_the_same_for_100_and_1000_accounts(db, monkeypatch):
    # Every batch through COPY (bulk_create takes fewer statements for a few hundred rows).
    monkeypatch.setattr(bulk, "COPY_FROM_ROWS", 0)
    make_accounts(100)
    small, _ = count_queries(T0)
    make_accounts(1000)  # placed by the next pass, like the first 100 were by this one
    large, changes = count_queries(T0)
    assert len({c.account_id for c in changes.stages_entered}) == 1000
    assert small == large
