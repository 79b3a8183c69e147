"""/api/v1/accounts/ and /contacts/: scope, roles, filters, ordering, upsert, audit."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db.models import Q
from rest_framework.renderers import JSONRenderer

from accounts.models import Account, AuditEntry, Team
from accounts.serializers import AccountSerializer
from accounts.visibility import is_manager, visible_accounts
from tests.factories import AccountFactory, ContactFactory, TeamFactory, UserFactory


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["external_id"] for row in response.json()["results"]]


def test_token_endpoint_returns_a_token_that_authenticates(world, client):
    response = client.post(
        "/api/v1/auth/token/", {"username": "csm_a", "password": "pw"}, content_type="application/json"
    )
    assert response.status_code == 200
    token = response.json()["token"]
    me = client.get("/api/v1/accounts/", headers={"Authorization": f"Token {token}"})
    assert me.status_code == 200


def test_token_endpoint_refuses_a_wrong_password(world, client):
    response = client.post(
        "/api/v1/auth/token/", {"username": "csm_a", "password": "nope"}, content_type="application/json"
    )
    assert response.status_code == 400
    assert "token" not in response.json()


@pytest.mark.parametrize("path", ["/api/v1/accounts/", "/api/v1/contacts/", "/api/v1/tickets/"])
def test_unauthenticated_is_401(api, db, path):
    assert api().get(path).status_code == 401


def test_a_csm_sees_own_and_team_accounts_only(world, api, account_a, account_b):
    own_elsewhere = AccountFactory(external_id="mine", owner=world.csm_b, team=None)
    teammate = AccountFactory(external_id="teammate", owner=world.csm_a2, team=world.team_a)

    assert sorted(ids(api(world.csm_a).get("/api/v1/accounts/"))) == ["acme", "teammate"]
    assert sorted(ids(api(world.csm_b).get("/api/v1/accounts/"))) == ["globex", "mine"]
    assert sorted(ids(api(world.manager_a).get("/api/v1/accounts/"))) == ["acme", "teammate"]
    assert len(ids(api(world.admin).get("/api/v1/accounts/"))) == 4
    assert teammate and own_elsewhere


def test_another_teams_account_is_a_404_for_every_method(world, api, account_b):
    client = api(world.csm_a)
    url = f"/api/v1/accounts/{account_b.pk}/"
    assert client.get(url).status_code == 404
    assert client.patch(url, {"name": "Hacked"}, format="json").status_code == 404
    assert client.delete(url).status_code == 404
    assert (
        client.put(f"/api/v1/accounts/by-external-id/{account_b.external_id}/", {"name": "x"}).status_code
        == 404
    )
    account_b.refresh_from_db()
    assert account_b.name == "Globex"


def test_search_and_filters_never_reach_across_teams(world, api, account_a, account_b):
    client = api(world.csm_a)
    assert ids(client.get("/api/v1/accounts/", {"search": "globex"})) == []
    assert ids(client.get("/api/v1/accounts/", {"team": world.team_b.pk})) == []
    assert ids(client.get("/api/v1/accounts/", {"owner": world.csm_b.pk})) == []


def test_filters_and_ordering(world, api):
    AccountFactory(
        external_id="a", name="Alpha", segment="smb", arr="100.00", renewal_date=dt.date(2027, 1, 10)
    )
    AccountFactory(
        external_id="b",
        name="Beta",
        segment="enterprise",
        arr="900.00",
        renewal_date=dt.date(2027, 3, 1),
        health_score="81.5",
        health_band="green",
        stage="adoption",
    )
    AccountFactory(
        external_id="c",
        name="Gamma",
        segment="enterprise",
        arr="500.00",
        renewal_date=dt.date(2027, 6, 1),
        health_score="35.0",
        health_band="red",
        stage="renewal",
    )
    client = api(world.admin)

    assert ids(client.get("/api/v1/accounts/", {"segment": "enterprise"})) == ["b", "c"]
    assert ids(client.get("/api/v1/accounts/", {"health_band": "red"})) == ["c"]
    assert ids(client.get("/api/v1/accounts/", {"stage": "adoption"})) == ["b"]
    assert ids(client.get("/api/v1/accounts/", {"renewal_before": "2027-03-01"})) == ["a", "b"]
    assert ids(client.get("/api/v1/accounts/", {"renewal_after": "2027-03-01"})) == ["b", "c"]
    assert ids(client.get("/api/v1/accounts/", {"ordering": "-arr"})) == ["b", "c", "a"]
    assert ids(client.get("/api/v1/accounts/", {"ordering": "health_score"}))[:2] == ["c", "b"]
    assert ids(client.get("/api/v1/accounts/", {"search": "gam"})) == ["c"]
    row = client.get("/api/v1/accounts/", {"search": "beta"}).json()["results"][0]
    assert row["health_score"] == 81.5
    assert row["arr"] == "900.00"


@pytest.mark.parametrize(
    "params", [{"health_band": "purple"}, {"renewal_before": "soon"}, {"owner": "x"}, {"page_size": "abc"}]
)
def test_bad_filter_values_are_400_or_ignored_never_500(world, api, account_a, params):
    assert api(world.admin).get("/api/v1/accounts/", params).status_code in (200, 400)


def test_pagination_and_page_size_cap(world, api):
    AccountFactory.create_batch(12)
    body = api(world.admin).get("/api/v1/accounts/", {"page_size": 5}).json()
    assert body["count"] == 12
    assert len(body["results"]) == 5
    assert "page=2" in body["next"]
    assert body["previous"] is None
    assert len(api(world.admin).get("/api/v1/accounts/", {"page_size": 10_000}).json()["results"]) == 12


@pytest.mark.parametrize("ordering", ["health_score", "-health_score", "renewal_date", "-arr"])
def test_ordered_pages_neither_repeat_nor_skip_and_unscored_come_last(world, api, ordering):
    for n in range(9):
        AccountFactory(
            external_id=f"acc-{n}",
            arr="500.00",
            renewal_date=dt.date(2027, 1, 1),
            health_score=None if n % 3 == 0 else "70.0",
        )
    client = api(world.admin)
    seen = []
    for page in (1, 2, 3, 4, 5):
        seen += ids(client.get("/api/v1/accounts/", {"ordering": ordering, "page_size": 2, "page": page}))
    assert sorted(seen) == sorted(f"acc-{n}" for n in range(9))
    if ordering.endswith("health_score"):
        assert seen[-3:] == ["acc-0", "acc-3", "acc-6"]  # unscored last either way, by id


def test_account_list_query_count_does_not_grow_with_rows(world, api, django_assert_max_num_queries):
    AccountFactory.create_batch(40, owner=world.csm_a, team=world.team_a)
    with django_assert_max_num_queries(8):
        assert len(ids(api(world.manager_a).get("/api/v1/accounts/"))) == 40


def test_the_list_shows_each_account_exactly_as_its_detail(world, api):
    """The list formats plain rows (AccountRows); the detail still goes through AccountSerializer."""
    AccountFactory(
        owner=world.csm_a,
        team=world.team_a,
        arr=Decimal("1234.5"),
        tier="gold",
        health_score=Decimal("61.5"),
        health_band="yellow",
        stage="adoption",
        status="churned",
        churned_at=dt.date(2026, 5, 1),
        churn_reason="budget",
    )
    AccountFactory(owner=None, team=world.team_a, contract_start=None, arr=Decimal("0"))
    client = api(world.manager_a)
    listed = client.get("/api/v1/accounts/").json()["results"]
    assert len(listed) == 2
    for row in listed:
        assert row == client.get(f"/api/v1/accounts/{row['id']}/").json()
    assert {row["arr"] for row in listed} == {"1234.50", "0.00"}
    assert {row["health_score"] for row in listed} == {61.5, None}


def _scope_as_a_subquery(user):
    """``visible_accounts`` as it was written before it read the team ids with the roles: the
    reference the faster scope must match (admins and inactive users are not concerned)."""
    teams = Team.objects.filter(Q(manager=user) | Q(members=user)).values("id")
    return Account.objects.filter(Q(owner=user) | Q(team_id__in=teams))


def test_the_list_body_is_byte_for_byte_the_serializer_over_the_subquery_scope(world, api):
    """The scope reads team ids as literals (issue 7): the list's bytes (count, links, rows, their
    order and formats) are those of AccountSerializer over the scope written as a subquery."""
    second = TeamFactory(name="Team A2", manager=world.manager_a)
    AccountFactory(name="Zeta", owner=world.csm_a, team=world.team_a, health_score=Decimal("70.5"))
    AccountFactory(name="Alpha", owner=world.manager_a, team=None, churned_at=dt.date(2026, 1, 2))
    AccountFactory(name="Alpha", owner=None, team=second, arr=Decimal("99.9"), renewal_date=None)
    AccountFactory(name="Mid", owner=world.csm_b, team=world.team_b)  # not visible to manager_a
    AccountFactory(name="Beta", owner=world.csm_b, team=second)

    response = api(world.manager_a).get("/api/v1/accounts/", {"page_size": 3})

    page = _scope_as_a_subquery(world.manager_a).order_by("name", "id")
    expected = {
        "count": 4,
        "next": "http://testserver/api/v1/accounts/?page=2&page_size=3",
        "previous": None,
        "results": AccountSerializer(page[:3], many=True).data,
    }
    assert page.count() == 4
    assert response.content == JSONRenderer().render(expected)


def test_the_scope_matches_the_subquery_and_follows_team_changes(world):
    """Every role's scope is the subquery's; the team ids are read once per user object (a
    request's), so a new request sees a membership change."""
    other = TeamFactory(name="Team C", manager=world.manager_b)
    loner = UserFactory(username="loner", role="csm")
    AccountFactory(owner=world.csm_a, team=world.team_a)
    teammates = AccountFactory(owner=world.csm_a2, team=world.team_a)
    AccountFactory(owner=world.csm_b, team=world.team_b)
    in_other = AccountFactory(owner=world.csm_b, team=other)
    AccountFactory(owner=loner, team=None)
    AccountFactory(owner=None, team=None)

    for user in (world.manager_a, world.manager_b, world.csm_a, world.csm_a2, world.csm_b, loner):
        fresh = get_user_model().objects.get(pk=user.pk)
        assert set(visible_accounts(fresh)) == set(_scope_as_a_subquery(fresh)), user.username
    assert len(visible_accounts(get_user_model().objects.get(pk=loner.pk))) == 1

    world.team_a.members.remove(world.csm_a)
    other.members.add(world.csm_a)
    fresh = get_user_model().objects.get(pk=world.csm_a.pk)
    assert teammates not in visible_accounts(fresh)  # own accounts stay, team A's others go
    assert in_other in visible_accounts(fresh)
    assert set(visible_accounts(fresh)) == set(_scope_as_a_subquery(fresh))


def test_the_scope_costs_no_query_beyond_the_roles(world, django_assert_num_queries):
    """The roles and the team ids are one query, cached on the user object."""
    user = get_user_model().objects.get(pk=world.csm_a.pk)
    with django_assert_num_queries(1):
        assert not is_manager(user)
        visible_accounts(user)
        visible_accounts(user)


def test_manager_creates_an_account_and_it_is_audited(world, api):
    payload = {
        "external_id": "crm-1",
        "name": "Initech",
        "segment": "smb",
        "arr": "12000.50",
        "currency": "eur",
        "owner": world.csm_a.pk,
        "team": world.team_a.pk,
        "renewal_date": "2027-05-01",
    }
    response = api(world.manager_a).post("/api/v1/accounts/", payload, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["currency"] == "EUR"
    assert body["arr"] == "12000.50"
    assert body["stage"] == "" and body["health_score"] is None and body["health_band"] is None
    entry = AuditEntry.objects.get(action="account.created")
    assert entry.actor == world.manager_a
    assert entry.changes["owner"] == world.csm_a.pk


def test_a_csm_may_not_create_or_delete_accounts(world, api, account_a):
    client = api(world.csm_a)
    assert (
        client.post("/api/v1/accounts/", {"external_id": "x", "name": "X"}, format="json").status_code == 403
    )
    assert client.delete(f"/api/v1/accounts/{account_a.pk}/").status_code == 403
    assert Account.objects.filter(pk=account_a.pk).exists()


def test_a_csm_cannot_hand_an_account_to_another_team(world, api, account_a):
    client = api(world.csm_a)
    url = f"/api/v1/accounts/{account_a.pk}/"

    to_team = client.patch(url, {"team": world.team_b.pk}, format="json")
    to_owner = client.patch(url, {"owner": world.csm_b.pk}, format="json")
    read_only = client.patch(
        url,
        {
            "health_score": 99,
            "health_band": "green",
            "health_band_since": "2026-01-01T00:00:00Z",
            "stage": "x",
        },
        format="json",
    )

    assert to_team.status_code == 400 and "team" in to_team.json()
    assert to_owner.status_code == 400 and "owner" in to_owner.json()
    assert read_only.status_code == 200
    account_a.refresh_from_db()
    assert (
        account_a.team,
        account_a.owner,
        account_a.health_score,
        account_a.health_band_since,
        account_a.stage,
    ) == (world.team_a, world.csm_a, None, None, "")


def test_owner_change_writes_an_audit_row(world, api, account_a):
    response = api(world.csm_a).patch(
        f"/api/v1/accounts/{account_a.pk}/", {"owner": world.csm_a2.pk}, format="json"
    )
    assert response.status_code == 200
    entry = AuditEntry.objects.get(action="account.changed")
    assert entry.changes == {"owner": [world.csm_a.pk, world.csm_a2.pk]}
    assert entry.actor == world.csm_a


def test_churning_sets_the_churn_date(world, api, account_a):
    response = api(world.csm_a).patch(
        f"/api/v1/accounts/{account_a.pk}/", {"status": "churned", "churn_reason": "budget"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["churned_at"] is not None


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"external_id": "x", "name": "X", "arr": "-1"}, "arr"),
        ({"external_id": "x", "name": "X", "arr": "abc"}, "arr"),
        ({"external_id": "x", "name": "X", "currency": "dollars"}, "currency"),
        ({"external_id": "x", "name": "X", "renewal_date": "2026-13-01"}, "renewal_date"),
        (
            {"external_id": "x", "name": "X", "contract_start": "2027-01-01", "renewal_date": "2026-01-01"},
            "renewal_date",
        ),
        ({"external_id": "acme", "name": "Dup"}, "external_id"),
        ({"name": "No id"}, "external_id"),
        ({"external_id": "x", "name": "X", "status": "zombie"}, "status"),
        ({"external_id": "x", "name": "X", "owner": 999_999}, "owner"),
    ],
)
def test_invalid_account_input_names_the_field(world, api, account_a, payload, field):
    response = api(world.admin).post("/api/v1/accounts/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_upsert_by_external_id_creates_then_updates(world, api):
    client = api(world.admin)
    url = "/api/v1/accounts/by-external-id/sf-001/"

    created = client.put(url, {"name": "Umbrella", "arr": "5000.00", "team": world.team_a.pk}, format="json")
    updated = client.put(url, {"arr": "7000.00"}, format="json")

    assert created.status_code == 201, created.json()
    assert updated.status_code == 200
    assert updated.json()["id"] == created.json()["id"]
    assert updated.json()["name"] == "Umbrella"
    assert Account.objects.get(external_id="sf-001").arr == 7000


def test_upsert_refuses_a_different_external_id_in_the_body(world, api):
    response = api(world.admin).put(
        "/api/v1/accounts/by-external-id/a/", {"external_id": "b", "name": "x"}, format="json"
    )
    assert response.status_code == 400
    assert "external_id" in response.json()


def test_contacts_are_scoped_and_take_an_account_external_id(world, api, account_a, account_b):
    ContactFactory(account=account_b, email="boss@globex.com")
    client = api(world.csm_a)

    created = client.post(
        "/api/v1/contacts/", {"account": "acme", "name": "Ann", "email": "ANN@acme.com"}, format="json"
    )
    foreign = client.post("/api/v1/contacts/", {"account": "globex", "name": "Eve"}, format="json")
    duplicate = client.post(
        "/api/v1/contacts/", {"account": account_a.pk, "email": "ann@acme.com"}, format="json"
    )

    assert created.status_code == 201, created.json()
    assert created.json()["account"] == account_a.pk
    assert created.json()["email"] == "ann@acme.com"
    assert foreign.status_code == 400 and "account" in foreign.json()
    assert duplicate.status_code == 400 and "email" in duplicate.json()
    assert [c["email"] for c in client.get("/api/v1/contacts/").json()["results"]] == ["ann@acme.com"]


def test_schema_and_docs_are_served_without_internet(client, db):
    schema = client.get("/api/schema/")
    docs = client.get("/api/docs/")
    assert schema.status_code == 200
    assert b"/api/v1/events/" in schema.content
    assert docs.status_code == 200
    assert b"cdn" not in docs.content.lower()


def test_openapi_schema_is_valid_without_warnings(tmp_path, db):
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert "/api/v1/accounts/by-external-id/{external_id}/" in (tmp_path / "schema.yaml").read_text()


@pytest.mark.parametrize("path", ["/api/v1/accounts/", "/api/v1/reports/churn/", "/api/v1/tasks/"])
def test_an_unknown_format_is_a_400_naming_the_parameter(world, api, path):
    client = api(world.manager_a)

    unknown = client.get(path, {"format": "îE"})
    known = client.get(path, {"format": "json"})

    assert unknown.status_code == 400, unknown.content
    assert unknown.json() == {"format": ["Unknown format 'îE': use one of api, json."]}
    assert known.status_code == 200, known.content
