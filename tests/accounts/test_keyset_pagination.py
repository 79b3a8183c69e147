"""Keyset pagination (``?after=<id>``) on every list of the default pagination class.

A walk by ``after`` reads each page as an index range by primary key, so page 2,000 of a million
accounts costs what page 1 costs (no OFFSET); the answer keeps the contract's shape.
"""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Account, Event
from playbooks.models import Alert, Task
from tests.factories import AccountFactory, ContactFactory, PlaybookFactory

pytestmark = pytest.mark.django_db


def walk(client, url: str, params: dict, between_pages=None) -> tuple[list[int], list[dict]]:
    """Every page of ``url`` by following ``next`` from ``after=0``; the ids seen and the bodies."""
    ids, bodies = [], []
    response = client.get(url, {**params, "after": 0})
    while True:
        assert response.status_code == 200, response.content
        body = response.json()
        bodies.append(body)
        ids += [row["id"] for row in body["results"]]
        if body["next"] is None:
            return ids, bodies
        if between_pages:
            between_pages()
        response = client.get(body["next"])


def test_a_walk_sees_every_account_once_in_id_order_while_rows_are_inserted(world, api):
    AccountFactory.create_batch(10, owner=world.csm_a, team=world.team_a)
    inserted = []

    def insert_one():
        inserted.append(AccountFactory(name="AAA first by name", owner=world.csm_a, team=world.team_a).pk)

    ids, bodies = walk(api(world.manager_a), "/api/v1/accounts/", {"page_size": 3}, between_pages=insert_one)
    assert inserted
    assert ids == sorted(Account.objects.values_list("pk", flat=True))  # each once, in id order
    assert len(ids) == len(set(ids))
    assert all(body["previous"] is None for body in bodies)
    assert all(len(body["results"]) == 3 for body in bodies[:-1])
    assert bodies[0]["count"] == 10


def test_keyset_rows_are_the_same_json_as_numbered_pages(world, api, account_a):
    AccountFactory.create_batch(4, owner=world.csm_a, team=world.team_a)
    client = api(world.manager_a)
    numbered = client.get("/api/v1/accounts/", {"ordering": "id"}).json()["results"]
    keyset = client.get("/api/v1/accounts/", {"after": 0}).json()
    assert keyset["results"] == numbered
    assert keyset["count"] == 5
    assert keyset["next"] is None


def test_after_combines_with_filters_search_and_the_callers_scope(world, api, account_a, account_b):
    for n in range(5):
        status = "churned" if n % 2 else "active"
        AccountFactory(name=f"Zeta {n}", owner=world.csm_a, team=world.team_a, status=status)
    client = api(world.manager_a)
    params = {"after": 0, "search": "zeta", "status": "active", "page_size": 2}
    body = client.get("/api/v1/accounts/", params).json()
    assert body["count"] == 3
    assert [row["name"] for row in body["results"]] == ["Zeta 0", "Zeta 2"]
    assert "status=active" in body["next"] and "search=zeta" in body["next"]
    assert f"after={body['results'][-1]['id']}" in body["next"]
    ids, _ = walk(client, "/api/v1/accounts/", {})
    assert account_b.pk not in ids and account_a.pk in ids
    after_last = client.get("/api/v1/accounts/", {"after": max(ids)}).json()
    assert after_last == {"count": 6, "next": None, "previous": None, "results": []}


def test_next_of_a_keyset_page_drops_nothing_but_moves_after(world, api):
    AccountFactory.create_batch(5)
    body = api(world.admin).get("/api/v1/accounts/", {"after": 0, "page_size": 2, "ordering": "id"}).json()
    assert "ordering=id" in body["next"] and "page_size=2" in body["next"]
    assert "page=" not in body["next"].replace("page_size=", "")


def test_a_keyset_page_has_no_offset_and_a_constant_query_count(world, api):
    client = api(world.manager_a)
    AccountFactory.create_batch(6, owner=world.csm_a, team=world.team_a)
    first_id = Account.objects.order_by("pk").values_list("pk", flat=True)[2]
    with CaptureQueriesContext(connection) as small:
        assert client.get("/api/v1/accounts/", {"after": first_id, "page_size": 2}).status_code == 200
    AccountFactory.create_batch(60, owner=world.csm_a, team=world.team_a)
    late_id = Account.objects.order_by("pk").values_list("pk", flat=True)[50]
    with CaptureQueriesContext(connection) as large:
        body = client.get("/api/v1/accounts/", {"after": late_id, "page_size": 2}).json()
    assert [row["id"] for row in body["results"]] == list(
        Account.objects.filter(pk__gt=late_id).order_by("pk").values_list("pk", flat=True)[:2]
    )
    assert len(large.captured_queries) == len(small.captured_queries)
    page_sql = [q["sql"] for q in large.captured_queries if '"accounts_account"."id" >' in q["sql"]]
    assert len(page_sql) == 1
    assert "OFFSET" not in page_sql[0].upper() and "LIMIT 3" in page_sql[0].upper()
    # ... whereas a numbered page far into the list is read with OFFSET.
    with CaptureQueriesContext(connection) as numbered:
        client.get("/api/v1/accounts/", {"page": 20, "page_size": 3})
    assert any("OFFSET 57" in q["sql"].upper() for q in numbered.captured_queries)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"after": "-1"}, "non-negative integer"),
        ({"after": "abc"}, "non-negative integer"),
        ({"after": ""}, "non-negative integer"),
        ({"after": "1.5"}, "non-negative integer"),
        ({"after": "١٢"}, "non-negative integer"),  # Arabic-Indic digits are not an id
        ({"after": "5", "page": "2"}, "page"),
        ({"after": "5", "ordering": "name"}, "ordering"),
        ({"after": "5", "ordering": "-id"}, "ordering"),
        ({"after": "5", "ordering": "id,name"}, "ordering"),
    ],
)
def test_bad_after_is_a_400_naming_it(world, api, params, message):
    response = api(world.admin).get("/api/v1/accounts/", params)
    assert response.status_code == 400
    assert message in response.json()["after"][0]


@pytest.mark.parametrize("ordering", ["id", "pk", ""])
def test_after_with_id_ordering_or_none_is_fine(world, api, ordering):
    AccountFactory.create_batch(3)
    body = api(world.admin).get("/api/v1/accounts/", {"after": 0, "ordering": ordering}).json()
    assert [row["id"] for row in body["results"]] == sorted(Account.objects.values_list("pk", flat=True))


def test_a_huge_after_is_an_empty_page_not_an_error(world, api, account_a):
    for after in ("9223372036854775807", "99999999999999999999999999", "0" * 30 + "7"):
        response = api(world.admin).get("/api/v1/accounts/", {"after": after})
        assert response.status_code == 200
        assert response.json()["count"] == 1


def _events(account, n):
    at = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    Event.objects.bulk_create(Event(account=account, name="login", occurred_at=at) for _ in range(n))


def _tasks(account, n):
    due = dt.date(2026, 4, 1)
    Task.objects.bulk_create(Task(account=account, title=f"T{i}", due_date=due) for i in range(n))


def _alerts(account, n):
    Alert.objects.bulk_create(
        Alert(account=account, recipient_key=f"email:a{i}@example.com", kind="renewal_within", title=f"A{i}")
        for i in range(n)
    )


@pytest.mark.parametrize(
    ("url", "make"),
    [
        ("/api/v1/events/", _events),
        ("/api/v1/tasks/", _tasks),
        ("/api/v1/alerts/", _alerts),
        ("/api/v1/contacts/", lambda account, n: ContactFactory.create_batch(n, account=account)),
        ("/api/v1/playbooks/", lambda account, n: PlaybookFactory.create_batch(n)),
    ],
)
def test_other_lists_walk_by_after_too(world, api, account_a, url, make):
    make(account_a, 5)
    client = api(world.admin)
    ids, bodies = walk(client, url, {"page_size": 2})
    total = bodies[0]["count"]  # playbooks: the 5 and those the migrations seed
    assert total >= 5 and len(ids) == total and ids == sorted(set(ids))
    assert len(bodies) == (total + 1) // 2 and all(body["count"] == total for body in bodies)
    assert client.get(url, {"after": "x"}).status_code == 400


def test_the_schema_documents_after_on_lists(world, api):
    schema = api(world.admin).get("/api/schema/", {"format": "json"}).json()
    params = {p["name"]: p for p in schema["paths"]["/api/v1/accounts/"]["get"]["parameters"]}
    assert params["after"]["schema"] == {"type": "integer", "minimum": 0}
    assert "after" in {p["name"] for p in schema["paths"]["/api/v1/tasks/"]["get"]["parameters"]}
