"""POST /api/v1/events/: atomic batches, per-row errors, duplicates, limits, rollups."""

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.db.models import Count, Sum

from accounts.models import Contact, Event, EventDaily

URL = "/api/v1/events/"


def event(account="acme", name="login", at="2026-11-20T10:00:00Z", **extra):
    return {"account": account, "name": name, "occurred_at": at, **extra}


@pytest.fixture
def integrator(world, api):
    return api(world.admin)


def test_valid_batch_is_stored_and_rolled_up_by_utc_day(integrator, account_a, account_b):
    batch = [
        event(at="2026-11-20T10:00:00Z", value="12.50"),
        event(at="2026-11-20T23:30:00-02:00", value=7),  # 2026-11-21 01:30 UTC
        event(at="2026-11-20T23:59:59+00:00"),
        event(name="export", at="2026-11-19T08:00:00+01:00", value="1.25", contact="Ann@Acme.com"),
        event(account="globex", name="login", at="2026-11-18T12:00:00Z", properties={"plan": "pro"}),
        event(account=account_b.pk, name="login", at="2026-11-18T13:00:00Z"),
    ]

    response = integrator.post(URL, batch, format="json")

    assert response.status_code == 201, response.json()
    assert response.json() == {"accepted": 6, "duplicates": 0}
    rollup = {
        (r.account.external_id, r.name, r.day): (r.count, r.value_sum)
        for r in EventDaily.objects.select_related("account")
    }
    assert rollup == {
        ("acme", "login", dt.date(2026, 11, 20)): (2, Decimal("12.50")),
        ("acme", "login", dt.date(2026, 11, 21)): (1, Decimal("7.00")),
        ("acme", "export", dt.date(2026, 11, 19)): (1, Decimal("1.25")),
        ("globex", "login", dt.date(2026, 11, 18)): (2, Decimal("0.00")),
    }
    export = Event.objects.get(name="export")
    assert export.contact == Contact.objects.get(account=account_a, email="ann@acme.com")
    assert Event.objects.get(account=account_b, occurred_at__hour=12).properties == {"plan": "pro"}


def test_rollup_counts_add_up_across_batches(integrator, account_a):
    for _ in range(3):
        assert integrator.post(URL, [event(value="1.10")] * 4, format="json").status_code == 201
    daily = EventDaily.objects.get(account=account_a, name="login")
    assert (daily.count, daily.value_sum) == (12, Decimal("13.20"))
    assert Event.objects.aggregate(n=Count("id"), total=Sum("value")) == {"n": 12, "total": Decimal("13.20")}


def test_batch_with_one_bad_row_is_refused_with_its_index_and_stores_nothing(integrator, account_a):
    batch = [event(idempotency_key=f"k{i}") for i in range(5)]
    batch[3]["occurred_at"] = "yesterday"

    response = integrator.post(URL, batch, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "errors": [{"index": 3, "field": "occurred_at", "message": response.json()["errors"][0]["message"]}]
    }
    assert "ISO-8601" in response.json()["errors"][0]["message"]
    assert Event.objects.count() == 0
    assert EventDaily.objects.count() == 0
    assert Contact.objects.count() == 0


@pytest.mark.parametrize(
    ("row", "field"),
    [
        (event(account="nope"), "account"),
        ({"account": "acme", "occurred_at": "2026-11-20T10:00:00Z"}, "name"),
        (event(name=""), "name"),
        (event(at="2026-11-20T10:00:00"), "occurred_at"),
        (event(at=None), "occurred_at"),
        (event(at="2099-01-01T00:00:00Z"), "occurred_at"),
        (event(value="abc"), "value"),
        (event(value="1.234"), "value"),
        (event(value=True), "value"),
        (event(properties=[1, 2]), "properties"),
        (event(contact="not an@email"), "contact"),
        (event(name="x" * 101), "name"),
        (event(idempotency_key=12), "idempotency_key"),
        ("just a string", None),
    ],
)
def test_each_kind_of_bad_row_names_its_field(integrator, account_a, row, field):
    response = integrator.post(URL, [event(), row], format="json")

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert {(e["index"], e["field"]) for e in errors} == {(1, field)}
    assert Event.objects.count() == 0


def test_resent_batch_with_idempotency_keys_stores_nothing_new(integrator, account_a):
    batch = [event(idempotency_key=f"evt-{i}", value="2.00") for i in range(10)]
    assert integrator.post(URL, batch, format="json").json() == {"accepted": 10, "duplicates": 0}

    again = integrator.post(URL, [*batch, event(idempotency_key="evt-new")], format="json")

    assert again.status_code == 201
    assert again.json() == {"accepted": 1, "duplicates": 10}
    assert Event.objects.count() == 11
    assert EventDaily.objects.get().count == 11
    assert EventDaily.objects.get().value_sum == Decimal("20.00")


def test_same_key_twice_in_one_batch_is_one_event(integrator, account_a, account_b):
    batch = [
        event(idempotency_key="same"),
        event(idempotency_key="same"),
        event("globex", idempotency_key="same"),
    ]
    assert integrator.post(URL, batch, format="json").json() == {"accepted": 2, "duplicates": 1}


def test_more_than_ten_thousand_rows_are_refused(integrator, account_a):
    response = integrator.post(URL, [event()] * 10_001, format="json")

    assert response.status_code == 400
    assert "at most 10000" in response.json()["errors"][0]["message"]
    assert Event.objects.count() == 0


def test_ten_thousand_rows_are_accepted_in_bulk(integrator, account_a, django_assert_max_num_queries):
    batch = [event(at=f"2026-11-{1 + i % 20:02d}T10:00:00Z", idempotency_key=str(i)) for i in range(10_000)]
    with django_assert_max_num_queries(40):
        response = integrator.post(URL, batch, format="json")
    assert response.json() == {"accepted": 10_000, "duplicates": 0}
    assert EventDaily.objects.aggregate(total=Sum("count"))["total"] == 10_000


def test_body_over_ten_megabytes_is_refused_before_parsing(integrator, account_a):
    body = json.dumps([event(properties={"pad": "x" * 1000})] * 11_000)
    assert len(body) > 10 * 1024 * 1024

    response = integrator.generic("POST", URL, body, content_type="application/json")

    assert response.status_code == 413
    assert "too large" in response.json()["detail"]
    assert Event.objects.count() == 0


@pytest.mark.parametrize("body", ["{not json", '{"account": "acme"}', "null", "42"])
def test_a_body_that_is_not_a_list_is_a_400(integrator, account_a, body):
    response = integrator.generic("POST", URL, body, content_type="application/json")
    assert response.status_code == 400
    assert Event.objects.count() == 0


def test_a_csm_cannot_push_events_to_another_teams_account(world, api, account_b):
    response = api(world.csm_a).post(URL, [event("globex")], format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0] == {
        "index": 0,
        "field": "account",
        "message": "unknown account 'globex'",
    }
    assert Event.objects.count() == 0


def test_unauthenticated_is_401(api, db):
    response = api().post(URL, [event()], format="json")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Token"


def test_events_list_is_scoped(world, api, account_a, account_b):
    api(world.admin).post(URL, [event("acme"), event("globex")], format="json")
    rows = api(world.csm_a).get(URL).json()["results"]
    assert [r["account"] for r in rows] == ["acme"]


@pytest.mark.parametrize(
    ("row", "field"),
    [
        (event(properties={"x": "a\u0000b"}), "properties"),
        (event(properties={"nested": [{"x": "\u0000"}]}), "properties"),
        (event(contact="a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 58 + ".com"), "contact"),
        (event(name="log\u0000in"), "name"),
    ],
)
def test_values_the_database_would_refuse_are_400s(integrator, account_a, row, field):
    response = integrator.post(URL, [row], format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == field


def test_a_body_nested_too_deeply_is_a_400(integrator, account_a):
    body = "[" * 100_000 + "]" * 100_000

    response = integrator.generic("POST", URL, body, content_type="application/json")

    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]
    assert Event.objects.count() == 0


def test_an_escaped_surrogate_pair_is_stored_and_a_lone_one_refused(integrator, account_a):
    pair = '[{"account": "acme", "name": "wave \\ud83d\\udc4b", "occurred_at": "2026-11-20T10:00:00Z"}]'
    lone = pair.replace("\\udc4b", "")

    assert integrator.generic("POST", URL, pair, content_type="application/json").status_code == 201
    refused = integrator.generic("POST", URL, lone, content_type="application/json")

    assert refused.status_code == 400
    assert "lone surrogates" in refused.json()["detail"]
    assert list(Event.objects.values_list("name", flat=True)) == ["wave \N{WAVING HAND SIGN}"]
