"""Shared fixtures: two teams with their managers and CSMs, an admin, API clients."""

from dataclasses import dataclass

import pytest
from django.db import connection
from rest_framework.test import APIClient

from tests.factories import AccountFactory, TeamFactory, UserFactory


@pytest.fixture(autouse=True, scope="session")
def _suite_runs_on_postgresql(django_db_setup, django_db_blocker):
    """The suite is about the production database; refuse to pass on anything else."""
    with django_db_blocker.unblock():
        assert connection.vendor == "postgresql", (
            "Run the tests on PostgreSQL: DATABASE_URL=postgres://... (make test does this)."
        )


@pytest.fixture
def default_configuration(transactional_db):
    """Roles, default journeys, scorecard and playbooks, which a transactional test's flush removes."""
    from tests.support.defaults import install_default_configuration

    install_default_configuration()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Hashing passwords properly costs ~0.3 s a user; the tests don't need it."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class World:
    admin: object
    manager_a: object
    manager_b: object
    csm_a: object
    csm_a2: object
    csm_b: object
    team_a: object
    team_b: object


@pytest.fixture
def world(db) -> World:
    """Team A (manager_a; csm_a, csm_a2) and team B (manager_b; csm_b), plus an admin."""
    admin = UserFactory(username="admin", role="admin")
    manager_a = UserFactory(username="manager_a", role="manager")
    manager_b = UserFactory(username="manager_b", role="manager")
    csm_a = UserFactory(username="csm_a", role="csm")
    csm_a2 = UserFactory(username="csm_a2", role="csm")
    csm_b = UserFactory(username="csm_b", role="csm")
    team_a = TeamFactory(name="Team A", manager=manager_a)
    team_a.members.add(csm_a, csm_a2)
    team_b = TeamFactory(name="Team B", manager=manager_b)
    team_b.members.add(csm_b)
    return World(admin, manager_a, manager_b, csm_a, csm_a2, csm_b, team_a, team_b)


def token_for(user) -> str:
    """A new API token's key for ``user`` (tokens are stored hashed: the key exists only here)."""
    from access.tokens import issue_token

    return issue_token(user=user)[1]


@pytest.fixture
def api():
    """An API client factory: ``api(user)`` authenticates with a token of the user's."""

    def make(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
        return client

    return make


@pytest.fixture
def account_a(world):
    return AccountFactory(external_id="acme", name="Acme", owner=world.csm_a, team=world.team_a)


@pytest.fixture
def account_b(world):
    return AccountFactory(external_id="globex", name="Globex", owner=world.csm_b, team=world.team_b)
