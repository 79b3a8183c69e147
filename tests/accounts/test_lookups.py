"""``any_of``: a list of values as one array parameter, matching exactly what ``__in`` matches."""

from accounts.lookups import any_of
from accounts.models import Account
from tests.factories import AccountFactory


def test_any_of_matches_what_in_matches(world):
    long_id = "y" * 255
    accounts = [
        AccountFactory(external_id=long_id, domain="long.example.com"),
        AccountFactory(external_id="a,b", owner=world.csm_a),
        AccountFactory(),
    ]
    ids = [accounts[0].pk, accounts[2].pk]
    values = ["a,b", long_id + "zzz", "{}", 'q"uote']

    assert sorted(Account.objects.filter(any_of("pk", ids)).values_list("pk", flat=True)) == sorted(ids)
    assert list(
        Account.objects.filter(any_of("external_id", values)).values_list("external_id", flat=True)
    ) == ["a,b"]  # a longer value is not cut to the column's length
    assert list(Account.objects.filter(any_of("pk", []))) == []
    assert list(Account.objects.filter(any_of("owner_id", [world.csm_a.pk]))) == [
        accounts[1]
    ]  # a foreign key
