"""``exceeds_share_of_active`` answers as the full count would, counting only as far as needed."""

import pytest

from accounts.models import Account
from accounts.shares import exceeds_share_of_active
from tests.factories import AccountFactory


@pytest.mark.parametrize("share", [0.25, 0.5, 1 / 3])
def test_the_answer_is_the_full_counts_at_every_size(db, share):
    AccountFactory.create_batch(2, status=Account.Status.CHURNED)  # not active: never counted
    for active in range(9):
        for count in range(12):
            assert exceeds_share_of_active(count, share) == (count > share * active), (active, count)
        AccountFactory()


def test_it_counts_no_more_than_it_needs(db, django_assert_num_queries):
    AccountFactory.create_batch(3)
    with django_assert_num_queries(1) as queries:
        assert not exceeds_share_of_active(0, 0.25)
    assert "LIMIT 1" in queries.captured_queries[0]["sql"]
