"""Oversized input is refused before any work: a batch over 10,000 rows, a body over 10 MB."""

import json

import pytest

from accounts.models import SurveyResponse, Ticket, Touchpoint

NOW = "2026-01-01T00:00:00Z"
ROWS = {
    "/api/v1/events/": {"account": "acme", "name": "login", "occurred_at": NOW},
    "/api/v1/tickets/": {"account": "acme", "external_id": "t", "opened_at": NOW},
    "/api/v1/surveys/": {"account": "acme", "kind": "nps", "score": 9, "responded_at": NOW},
    "/api/v1/touchpoints/": {"account": "acme", "kind": "call", "occurred_at": NOW},
}


def stored():
    return Ticket.objects.count(), SurveyResponse.objects.count(), Touchpoint.objects.count()


@pytest.mark.django_db
@pytest.mark.parametrize("url", ROWS)
def test_a_batch_over_ten_thousand_rows_is_refused_whole(
    world, api, account_a, url, django_assert_max_num_queries
):
    before = stored()
    client = api(world.csm_a)
    with django_assert_max_num_queries(2):  # authentication only: no row is looked at
        response = client.post(url, [ROWS[url]] * 10_001, format="json")
    assert response.status_code == 400
    assert "at most 10000" in response.json()["errors"][0]["message"]
    assert stored() == before


@pytest.mark.django_db
@pytest.mark.parametrize("url", ROWS)
def test_a_body_over_ten_megabytes_is_refused_before_parsing(world, api, account_a, url):
    body = json.dumps([{**ROWS[url], "summary": "x" * 1000}] * 11_000)
    assert len(body) > 10 * 1024 * 1024
    before = stored()
    response = api(world.csm_a).generic("POST", url, body, content_type="application/json")
    assert response.status_code == 413
    assert stored() == before
