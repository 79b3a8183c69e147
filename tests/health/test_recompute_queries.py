"""The recompute runs a number of queries that does not grow with the number of accounts."""

import pytest

from accounts.models import Account
from health.models import HealthScore
from health.scoring import recompute_health
from tests.health.conftest import T, events

# Scorecards (2), accounts, one per distinct metric of the default scorecard (11, milestone
# progress 2), overrides, one insert, one update, savepoints: about 20. The bound is constant.
MAX_QUERIES = 30

pytestmark = pytest.mark.django_db


def make_accounts(count: int) -> list[Account]:
    accounts = Account.objects.bulk_create(
        Account(external_id=f"bulk-{i:05d}", name=f"Bulk {i}", segment="smb") for i in range(count)
    )
    for account in accounts[:3]:
        events(account, ("login", "2026-03-09 10:00", "someone@bulk.example", None))
    return accounts


@pytest.mark.parametrize("count", [100, 10_000])
def test_recompute_queries_do_not_grow_with_accounts(count, django_assert_max_num_queries):
    make_accounts(count)
    with django_assert_max_num_queries(MAX_QUERIES):
        changes = recompute_health(now=T)  # the migrated default scorecard
    assert changes.accounts == count
    assert HealthScore.objects.filter(computed_at=T).count() == count
    assert Account.objects.filter(health_band__isnull=False).count() == count
