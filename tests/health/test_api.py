"""The Health API: scope (404), authentication (401), roles (403), bad scorecards (400 by field)."""

import datetime as dt
import json

import pytest
import time_machine
from django.core.management import call_command

from accounts.models import AuditEntry
from health.models import Scorecard
from health.scoring import recompute_health
from tests.health.conftest import T, events, measure

LOGINS = measure(
    "logins", "event_count", {"type": "linear", "zero_at": 0, "full_at": 10}, event="login", days=7
)
GOOD = {"name": "Ent", "segment": "enterprise", "red_below": 40, "green_from": 70, "measures": [LOGINS]}


@pytest.fixture(autouse=True)
def _at_t():
    with time_machine.travel(T, tick=False):
        yield


def test_health_needs_authentication(account_a, api):
    assert api().get(f"/api/v1/accounts/{account_a.pk}/health/").status_code == 401


def test_health_of_an_account_out_of_scope_is_a_404(world, account_b, api):
    client = api(world.csm_a)
    assert client.get(f"/api/v1/accounts/{account_b.pk}/health/").status_code == 404
    assert client.get(f"/api/v1/accounts/{account_b.pk}/health/history/").status_code == 404
    body = {"band": "red", "reason": "x", "expires_at": (T + dt.timedelta(days=2)).isoformat()}
    assert client.post(f"/api/v1/accounts/{account_b.pk}/health/override/", body).status_code == 404


def test_health_explains_the_score_and_what_changed(world, account_a, api, linear_logins):
    events(account_a, ("login", "2026-03-02 09:00", None, None))
    recompute_health(now=T - dt.timedelta(days=2))
    events(account_a, *[("login", f"2026-03-09 0{i}:00", None, None) for i in range(5)])
    recompute_health(now=T)
    body = api(world.csm_a).get(f"/api/v1/accounts/{account_a.pk}/health/").json()
    assert body["score"] == 50.0 and body["band"] == "yellow"
    assert body["scorecard"] == {
        "id": linear_logins.pk,
        "name": linear_logins.name,
        "version": linear_logins.version,
    }
    (component,) = body["components"]
    assert component | {"data_at": None} == {
        "measure": "logins",
        "label": "logins",
        "group": "usage",
        "metric": "event_count",
        "raw": 5,
        "points": 50,
        "weight": 1,
        "contribution": 50,
        "data_at": None,
    }
    assert body["missing"] == [] and body["override"] is None and body["stale"] is False
    assert body["changes"] == [{"measure": "logins", "raw_before": 1, "raw_now": 5, "points_delta": 40}]
    history = api(world.csm_a).get(f"/api/v1/accounts/{account_a.pk}/health/history/?days=30").json()
    assert [(h["score"], h["band"]) for h in history] == [(10.0, "red"), (50.0, "yellow")]


def test_history_days_must_be_sensible(world, account_a, api):
    response = api(world.csm_a).get(f"/api/v1/accounts/{account_a.pk}/health/history/?days=0")
    assert response.status_code == 400 and "days" in response.json()


def test_a_csm_overrides_the_band_with_a_reason_and_it_is_audited(world, account_a, api, linear_logins):
    recompute_health(now=T)
    url = f"/api/v1/accounts/{account_a.pk}/health/override/"
    client = api(world.csm_a)
    missing_reason = client.post(url, {"band": "green", "expires_at": (T + dt.timedelta(days=7)).isoformat()})
    assert missing_reason.status_code == 400 and "reason" in missing_reason.json()
    response = client.post(
        url,
        {"band": "green", "reason": "Renewal signed", "expires_at": (T + dt.timedelta(days=7)).isoformat()},
    )
    assert response.status_code == 201
    body = client.get(f"/api/v1/accounts/{account_a.pk}/health/").json()
    assert body["band"] == "green" and body["computed_band"] == "red"
    assert body["override"]["reason"] == "Renewal signed"
    assert AuditEntry.objects.filter(action="health.override.set", target_id=str(account_a.pk)).exists()
    assert client.delete(url).status_code == 204
    assert client.get(f"/api/v1/accounts/{account_a.pk}/health/").json()["band"] == "red"


def test_recompute_is_for_admins(world, api, account_a, linear_logins):
    assert api().post("/api/v1/health/recompute/").status_code == 401
    assert api(world.manager_a).post("/api/v1/health/recompute/?sync=1").status_code == 403
    response = api(world.admin).post("/api/v1/health/recompute/?sync=1")
    assert response.status_code == 200
    assert response.json()["accounts"] >= 1


def test_scorecards_are_read_by_all_and_written_by_admins(world, api):
    assert api(world.csm_a).get("/api/v1/scorecards/").status_code == 200
    assert api(world.manager_a).post("/api/v1/scorecards/", GOOD).status_code == 403
    response = api(world.admin).post("/api/v1/scorecards/", GOOD)
    assert response.status_code == 201
    assert response.json() | {"id": 0, "derived_from": None} == {
        "id": 0,
        "name": "Ent",
        "segment": "enterprise",
        "version": 1,
        "status": "draft",
        "red_below": 40.0,
        "green_from": 70.0,
        "stale_after_days": 14,
        "derived_from": None,
        "published_at": None,
        "measures": [{**LOGINS, "label": "logins"}],
    }


def bad(**changes) -> dict:
    return {**GOOD, **changes}


def with_measure(**changes) -> dict:
    return bad(measures=[{**LOGINS, **changes}])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (with_measure(metric="logins_per_day"), "measures[0].metric"),
        (with_measure(params={"event": "login", "days": 0}), "measures[0].params.days"),
        (with_measure(params={"event": "login"}), "measures[0].params.days"),
        (with_measure(params={"event": "login", "days": 7, "colour": "red"}), "measures[0].params.colour"),
        (with_measure(params={"days": 7}), "measures[0].params.event"),
        (with_measure(weight=0), "measures[0].weight"),
        (with_measure(weight=-1), "measures[0].weight"),
        (with_measure(weight="heavy"), "measures[0].weight"),
        (
            with_measure(mapping={"type": "thresholds", "points": [[0, 0], [5, 50], [5, 100]]}),
            "measures[0].mapping.points",
        ),
        (
            with_measure(mapping={"type": "thresholds", "points": [[10, 0], [5, 50]]}),
            "measures[0].mapping.points",
        ),
        (with_measure(mapping={"type": "thresholds", "points": [[0, 120]]}), "measures[0].mapping.points[0]"),
        (with_measure(mapping={"type": "linear", "zero_at": 5, "full_at": 5}), "measures[0].mapping.full_at"),
        (with_measure(mapping={"type": "steps"}), "measures[0].mapping.type"),
        (bad(red_below=80, green_from=70), "red_below"),
        (bad(green_from=101), "green_from"),
        (bad(measures=[]), "measures"),
        (bad(measures=[LOGINS, LOGINS]), "measures[1].key"),
        ({"name": "No measures", "red_below": 40, "green_from": 70}, "measures"),
    ],
)
def test_a_bad_scorecard_is_a_400_naming_the_field(world, api, body, field):
    response = api(world.admin).post("/api/v1/scorecards/", body)
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert not Scorecard.objects.filter(name="Ent").exists()


def test_editing_an_active_scorecard_makes_a_new_draft_and_publish_retires_the_old(world, api):
    client = api(world.admin)
    first = client.post("/api/v1/scorecards/", GOOD).json()
    assert client.post(f"/api/v1/scorecards/{first['id']}/publish/").json()["status"] == "active"
    edited = client.patch(f"/api/v1/scorecards/{first['id']}/", {"green_from": 60})
    assert edited.status_code == 201
    draft = edited.json()
    assert (draft["status"], draft["version"], draft["green_from"], draft["derived_from"]) == (
        "draft",
        2,
        60.0,
        first["id"],
    )
    assert client.get(f"/api/v1/scorecards/{first['id']}/").json()["status"] == "active"
    same_draft = client.patch(f"/api/v1/scorecards/{draft['id']}/", {"name": "Ent v2"})
    assert same_draft.status_code == 200 and same_draft.json()["id"] == draft["id"]
    assert client.post(f"/api/v1/scorecards/{draft['id']}/publish/").status_code == 200
    assert client.get(f"/api/v1/scorecards/{first['id']}/").json()["status"] == "retired"
    assert client.post(f"/api/v1/scorecards/{first['id']}/publish/").status_code == 400
    actions = set(AuditEntry.objects.filter(target_type="health.scorecard").values_list("action", flat=True))
    assert actions == {"scorecard.created", "scorecard.updated", "scorecard.published", "scorecard.retired"}


def test_a_bad_patch_is_a_400_naming_the_field(world, api):
    client = api(world.admin)
    draft = client.post("/api/v1/scorecards/", GOOD).json()
    response = client.patch(f"/api/v1/scorecards/{draft['id']}/", {"red_below": 90})
    assert response.status_code == 400 and "red_below" in response.json()


def test_preview_compares_bands_now_and_with_the_draft_and_writes_nothing(
    world, api, account_a, linear_logins
):
    events(account_a, *[("login", f"2026-03-09 0{i}:00", None, None) for i in range(5)])  # 50 points
    client = api(world.admin)
    stricter = client.patch(
        f"/api/v1/scorecards/{linear_logins.pk}/", {"red_below": 55, "green_from": 80}
    ).json()
    response = client.get(f"/api/v1/scorecards/{stricter['id']}/preview/")
    assert response.status_code == 200
    body = response.json()
    assert body["bands_now"] == {"yellow": 1} and body["bands_with_draft"] == {"red": 1}
    assert [(c["account"], c["band_now"], c["band_with_draft"]) for c in body["changes"]] == [
        (account_a.pk, "yellow", "red")
    ]
    assert not account_a.health_scores.exists()


def test_export_and_import_config_round_trip_with_the_same_validation(linear_logins, tmp_path):
    path = tmp_path / "health.json"
    call_command("export_config", output=str(path))
    config = json.loads(path.read_text())
    assert [s["name"] for s in config["scorecards"]] == [linear_logins.name]
    call_command("import_config", str(path))  # identical: nothing new
    assert Scorecard.objects.count() == 2  # the migrated default (retired) and ours
    config["scorecards"][0]["green_from"] = 65
    config["scorecards"][0]["measures"][0]["weight"] = 0
    path.write_text(json.dumps(config))
    with pytest.raises(Exception, match=r"measures\[0\]\.weight"):
        call_command("import_config", str(path))
    config["scorecards"][0]["measures"][0]["weight"] = 2
    path.write_text(json.dumps(config))
    call_command("import_config", str(path))
    active = Scorecard.objects.get(segment="", status="active")
    assert (active.version, float(active.green_from)) == (linear_logins.version + 1, 65.0)
