"""The Journeys API: scoped to the caller, clear 400s and 404s, manual actions audited."""

import datetime as dt

import pytest
import time_machine

from accounts.models import AuditEntry
from journeys.evaluation import evaluate_journeys
from journeys.models import Milestone
from tests.factories import AccountFactory
from tests.journeys.conftest import T0, at


@pytest.fixture
def placed(account_a, account_b, default_journey):
    """Both accounts started on T0 and evaluated a day later (onboarding)."""
    for account in (account_a, account_b):
        account.contract_start = T0.date()
        account.save(update_fields=["contract_start"])
    evaluate_journeys(now=at(1))
    return account_a


def url(account, tail: str = "journey/") -> str:
    return f"/api/v1/accounts/{account.pk}/{tail}"


def test_journey_shows_stage_milestones_and_history(api, world, placed):
    response = api(world.csm_a).get(url(placed))
    assert response.status_code == 200
    body = response.json()
    assert body["stage"] == "onboarding"
    assert body["entered_at"].startswith("2026-01-05T00:00:00")
    first = body["milestones"][0]
    assert set(first) >= {"key", "name", "stage", "due_at", "completed_at", "status"}
    assert {m["key"] for m in body["milestones"]} >= {"kickoff-call", "first-login", "onboarding-review"}
    assert body["history"] == [
        {
            "from": None,
            "to": "onboarding",
            "changed_at": body["entered_at"],
            "reason": "Placed in its first stage",
            "cause": "placed",
            "changed_by": None,
        }
    ]


def test_an_account_not_yet_evaluated_has_an_empty_journey(api, world, account_a):
    body = api(world.csm_a).get(url(account_a)).json()
    assert body == {
        "journey": None,
        "stage": None,
        "stage_name": None,
        "entered_at": None,
        "milestones": [],
        "history": [],
    }


def test_accounts_outside_the_callers_scope_are_404_on_every_journey_endpoint(api, world, placed, account_b):
    client = api(world.csm_a)
    assert client.get(url(account_b)).status_code == 404
    assert client.post(url(account_b, "milestones/kickoff-call/complete/")).status_code == 404
    response = client.post(url(account_b, "stage/"), {"stage": "adoption", "reason": "x"})
    assert response.status_code == 404
    assert not AuditEntry.objects.filter(action__startswith="journey.").exists()
    assert client.get("/api/v1/accounts/999999/journey/").status_code == 404


def test_anonymous_callers_get_401(api, placed):
    client = api()
    assert client.get(url(placed)).status_code == 401
    assert client.post(url(placed, "milestones/kickoff-call/complete/")).status_code == 401
    assert client.post(url(placed, "stage/"), {"stage": "adoption", "reason": "x"}).status_code == 401


def test_completing_a_milestone_by_hand_is_recorded_audited_and_repeat_safe(api, world, placed):
    client = api(world.csm_a)
    with time_machine.travel(at(2), tick=False):
        response = client.post(url(placed, "milestones/kickoff-call/complete/"))
    assert response.status_code == 200
    body = response.json()
    assert (body["key"], body["status"], body["completed_via"], body["completed_by"]) == (
        "kickoff-call",
        "done",
        "user",
        "csm_a",
    )
    assert body["completed_at"].startswith("2026-01-07T09:00:00")
    assert AuditEntry.objects.filter(action="journey.milestone_completed", actor=world.csm_a).count() == 1
    again = client.post(url(placed, "milestones/kickoff-call/complete/"))
    assert again.status_code == 200
    assert again.json()["completed_at"] == body["completed_at"]
    assert AuditEntry.objects.filter(action="journey.milestone_completed").count() == 1


def test_a_rule_milestone_can_be_completed_by_hand(api, world, placed):
    response = api(world.manager_a).post(url(placed, "milestones/integration-done/complete/"))
    assert response.status_code == 200
    milestone = Milestone.objects.get(account=placed, definition__key="integration-done")
    assert (milestone.status, milestone.completed_via, milestone.completed_by) == (
        "done",
        "user",
        world.manager_a,
    )


def test_an_unknown_milestone_key_is_a_404_that_names_the_stage_milestones(api, world, placed):
    response = api(world.csm_a).post(url(placed, "milestones/renewal-review/complete/"))
    assert response.status_code == 404
    detail = response.json()["detail"]
    assert "'renewal-review'" in detail and "'onboarding'" in detail and "kickoff-call" in detail


def test_moving_a_stage_by_hand_records_history_audits_and_sticks(api, world, placed):
    client = api(world.csm_a)
    response = client.post(url(placed, "stage/"), {"stage": "renewal", "reason": "Early renewal talks"})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["stage"] == "renewal"
    assert body["history"][-1]["from"] == "onboarding"
    assert body["history"][-1]["reason"] == "Early renewal talks"
    assert body["history"][-1]["changed_by"] == "csm_a"
    assert {m["key"] for m in body["milestones"]} == {"open-tickets-reviewed", "renewal-review"}
    placed.refresh_from_db()
    assert placed.stage == "renewal"
    entry = AuditEntry.objects.get(action="journey.stage_moved")
    assert entry.changes == {"stage": ["onboarding", "renewal"], "reason": "Early renewal talks"}
    # Onboarding's open milestones were left behind; the next pass keeps the manual move.
    assert not Milestone.objects.filter(account=placed, definition__stage__key="onboarding", status="pending")
    with time_machine.travel(at(3), tick=False):
        evaluate_journeys(now=at(3))
    placed.refresh_from_db()
    assert placed.stage == "renewal"


def test_a_manual_move_out_of_renewal_is_not_undone_by_the_renewal_window(api, world, default_journey):
    account = AccountFactory(
        owner=world.csm_a, contract_start=dt.date(2024, 1, 1), renewal_date=T0.date() + dt.timedelta(days=30)
    )
    evaluate_journeys(now=T0)
    account.refresh_from_db()
    assert account.stage == "renewal"
    response = api(world.csm_a).post(url(account, "stage/"), {"stage": "adoption", "reason": "Signed early"})
    assert response.status_code == 200
    evaluate_journeys(now=at(1))
    account.refresh_from_db()
    assert account.stage == "adoption"


@pytest.mark.parametrize(
    ("payload", "field", "text"),
    [
        ({"reason": "x"}, "stage", "required"),
        ({"stage": "adoption"}, "reason", "required"),
        ({"stage": "adoption", "reason": "   "}, "reason", "blank"),
        ({"stage": "nowhere", "reason": "x"}, "stage", "onboarding, adoption, renewal, churned"),
        ({"stage": "churned", "reason": "x"}, "stage", "status"),
        ({"stage": "onboarding", "reason": "x"}, "stage", "already"),
        ({"stage": ["adoption"], "reason": "x"}, "stage", ""),
    ],
)
def test_bad_stage_moves_are_400_naming_the_field(api, world, placed, payload, field, text):
    response = api(world.csm_a).post(url(placed, "stage/"), payload, format="json")
    assert response.status_code == 400
    body = response.json()
    assert field in body
    assert text in " ".join(body[field])
    assert not AuditEntry.objects.filter(action="journey.stage_moved").exists()


def test_a_churned_account_cannot_be_moved_by_hand(api, world, placed):
    placed.status = "churned"
    placed.save(update_fields=["status"])
    response = api(world.csm_a).post(url(placed, "stage/"), {"stage": "adoption", "reason": "x"})
    assert response.status_code == 400
    assert "churned" in response.json()["stage"][0]


def test_the_journey_page_runs_a_fixed_number_of_queries(api, world, placed, django_assert_max_num_queries):
    client = api(world.admin)
    client.get(url(placed))
    with django_assert_max_num_queries(10):
        assert client.get(url(placed)).status_code == 200
