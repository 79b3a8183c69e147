"""Mass assignment: whatever a CSM sends, they cannot set an owner or team outside their scope,
a health score or band, a stage, a role or staff status (property tests over the writable fields)."""

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from accounts.models import Account, Team
from accounts.visibility import assignable_users, visible_teams
from playbooks.models import Task
from tests.support.properties import PROPERTY_SETTINGS

# Fields a hostile body may carry: the serializer's writable ones, its read-only ones, and
# names of user privileges that are not fields at all.
PRIVILEGED = [
    "health_score",
    "health_band",
    "health_band_since",
    "stage",
    "is_staff",
    "is_superuser",
    "role",
    "groups",
    "created_at",
]


@st.composite
def hostile_account_bodies(draw, user_ids, team_ids):
    body = {}
    if draw(st.booleans()):
        body["owner"] = draw(st.sampled_from([*user_ids, None, 10**9]))
    if draw(st.booleans()):
        body["team"] = draw(st.sampled_from([*team_ids, None, 10**9]))
    if draw(st.booleans()):
        body["name"] = draw(st.text(min_size=1, max_size=20).filter(lambda s: "\x00" not in s and s.strip()))
    for key in draw(st.lists(st.sampled_from(PRIVILEGED), unique=True, max_size=4)):
        body[key] = draw(
            st.sampled_from([True, 100, "green", "red", "admin", "renewal", [1], "2020-01-01T00:00:00Z"])
        )
    return body


@pytest.fixture
def mass_world(world, account_a, account_b):
    return world, account_a, account_b


@pytest.mark.django_db
@PROPERTY_SETTINGS
@given(data=st.data())
def test_a_csm_cannot_assign_outside_their_scope_or_set_privileged_fields(mass_world, api, data):
    world, account_a, _ = mass_world
    user_ids = [
        u.pk for u in (world.admin, world.manager_a, world.manager_b, world.csm_a, world.csm_a2, world.csm_b)
    ]
    team_ids = [world.team_a.pk, world.team_b.pk]
    allowed_owners = set(assignable_users(world.csm_a).values_list("pk", flat=True))
    allowed_teams = set(visible_teams(world.csm_a).values_list("pk", flat=True))
    Account.objects.filter(pk=account_a.pk).update(
        owner=world.csm_a, team=world.team_a, health_score=Decimal("55.0"), health_band="yellow"
    )
    body = data.draw(hostile_account_bodies(user_ids, team_ids))
    client = api(world.csm_a)

    response = client.patch(
        f"/api/v1/accounts/{account_a.pk}/", json.dumps(body), content_type="application/json"
    )

    assert response.status_code in (200, 400), response.content
    account = Account.objects.get(pk=account_a.pk)
    assert account.owner_id in allowed_owners | {None}
    assert account.team_id in allowed_teams | {None}
    assert (account.health_score, account.health_band, account.health_band_since) == (
        Decimal("55.0"),
        "yellow",
        None,
    )
    if body.get("owner") not in allowed_owners | {None} or body.get("team") not in allowed_teams | {None}:
        assert response.status_code == 400
        assert (account.owner_id, account.team_id) == (world.csm_a.pk, world.team_a.pk)
    world.csm_a.refresh_from_db()
    assert not world.csm_a.is_staff and not world.csm_a.is_superuser
    assert set(world.csm_a.groups.values_list("name", flat=True)) == {"csm"}


@pytest.mark.django_db
@PROPERTY_SETTINGS
@given(data=st.data())
def test_a_csm_cannot_create_a_task_for_someone_outside_their_scope(mass_world, api, data):
    world, account_a, account_b = mass_world
    assignee = data.draw(
        st.sampled_from([world.csm_a, world.csm_a2, world.manager_a, world.csm_b, world.manager_b])
    )
    account = data.draw(st.sampled_from([account_a, account_b]))
    client = api(world.csm_a)
    before = Task.objects.count()

    response = client.post(
        "/api/v1/tasks/",
        {"account": account.pk, "title": "x", "due_date": "2030-01-01", "assignee": assignee.pk},
        format="json",
    )

    in_scope = account == account_a and assignee.pk in set(
        assignable_users(world.csm_a).values_list("pk", flat=True)
    )
    assert response.status_code == (201 if in_scope else 400), response.content
    assert Task.objects.count() == before + (1 if in_scope else 0)


@pytest.mark.django_db
def test_a_manager_cannot_move_an_account_to_another_team(world, api, account_a):
    response = api(world.manager_a).patch(
        f"/api/v1/accounts/{account_a.pk}/", {"team": world.team_b.pk}, format="json"
    )
    assert response.status_code == 400
    assert "team" in response.json()
    assert Account.objects.get(pk=account_a.pk).team_id == world.team_a.pk
    assert Team.objects.count() == 2
