"""POST /tickets/, /surveys/, /touchpoints/: one object or a list, atomic, scoped."""

import pytest

from accounts.models import SurveyResponse, Ticket, Touchpoint


def ticket(external_id="T-1", **extra):
    return {
        "account": "acme",
        "external_id": external_id,
        "subject": "Login broken",
        "priority": "high",
        "status": "open",
        "opened_at": "2026-11-01T09:00:00Z",
        **extra,
    }


def test_tickets_upsert_by_external_id(world, api, account_a):
    client = api(world.admin)

    first = client.post("/api/v1/tickets/", [ticket("T-1"), ticket("T-2", priority="urgent")], format="json")
    second = client.post(
        "/api/v1/tickets/",
        ticket("T-1", status="solved", closed_at="2026-11-02T10:00:00+01:00"),
        format="json",
    )

    assert first.status_code == 201 and first.json() == {"created": 2, "updated": 0}
    assert second.status_code == 201 and second.json() == {"created": 0, "updated": 1}
    solved = Ticket.objects.get(external_id="T-1")
    assert solved.status == "solved" and solved.closed_at is not None
    assert Ticket.objects.count() == 2


@pytest.mark.parametrize(
    ("row", "field"),
    [
        (ticket(priority="critical"), "priority"),
        (ticket(status="wontfix"), "status"),
        (ticket(opened_at="2026-11-01"), "opened_at"),
        (ticket(closed_at="2026-10-01T00:00:00Z"), "closed_at"),
        (ticket(external_id=""), "external_id"),
        (ticket(account="globex"), "account"),
    ],
)
def test_a_bad_ticket_row_stores_nothing(world, api, account_a, account_b, row, field):
    response = api(world.csm_a).post("/api/v1/tickets/", [ticket("ok"), row], format="json")
    assert response.status_code == 400
    assert {(e["index"], e["field"]) for e in response.json()["errors"]} == {(1, field)}
    assert Ticket.objects.count() == 0


def test_a_ticket_id_of_another_teams_account_is_refused(world, api, account_a, account_b):
    api(world.admin).post("/api/v1/tickets/", ticket("T-9", account="globex"), format="json")

    response = api(world.csm_a).post("/api/v1/tickets/", ticket("T-9"), format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "external_id"
    assert Ticket.objects.get(external_id="T-9").account == account_b


def test_surveys_check_the_score_range_of_their_kind(world, api, account_a):
    client = api(world.admin)
    good = [
        {
            "account": "acme",
            "kind": "nps",
            "score": 0,
            "responded_at": "2026-11-01T00:00:00Z",
            "contact": "a@acme.com",
        },
        {
            "account": "acme",
            "kind": "nps",
            "score": 10,
            "responded_at": "2026-11-01T00:00:00Z",
            "comment": "Great",
        },
        {
            "account": "acme",
            "kind": "csat",
            "score": 5,
            "responded_at": "2026-11-01T00:00:00Z",
            "external_id": "s1",
        },
    ]
    bad_csat = {**good[2], "score": 0, "external_id": "s2"}
    bad_nps = {**good[0], "score": 11}

    assert client.post("/api/v1/surveys/", good, format="json").json() == {"accepted": 3, "duplicates": 0}
    refused = client.post("/api/v1/surveys/", [bad_csat, bad_nps], format="json")
    assert refused.status_code == 400
    assert {(e["index"], e["field"]) for e in refused.json()["errors"]} == {(0, "score"), (1, "score")}
    assert client.post("/api/v1/surveys/", good[2], format="json").json() == {"accepted": 0, "duplicates": 1}
    assert SurveyResponse.objects.count() == 3
    assert SurveyResponse.objects.get(score=0).contact.email == "a@acme.com"


def test_touchpoints_are_authored_by_the_caller(world, api, account_a, account_b):
    client = api(world.csm_a)
    response = client.post(
        "/api/v1/touchpoints/",
        {"account": "acme", "kind": "call", "occurred_at": "2026-11-20T15:00:00Z", "summary": "QBR prep"},
        format="json",
    )
    foreign = client.post(
        "/api/v1/touchpoints/",
        {"account": "globex", "kind": "call", "occurred_at": "2026-11-20T15:00:00Z"},
        format="json",
    )

    assert response.status_code == 201
    assert response.json()[0]["author"] == world.csm_a.pk
    assert foreign.status_code == 400
    assert Touchpoint.objects.get().author == world.csm_a
    assert [t["summary"] for t in client.get("/api/v1/touchpoints/").json()["results"]] == ["QBR prep"]
