"""The score history stores each measure's rules once per scorecard version and only values per score.

What the API and the explanations show must not depend on the stored form: a lean row and the
same row in the full (older) form explain identically, and a history mixing both still says
what changed.
"""

import json

from accounts.models import Account
from health.explanations import explain_health
from health.models import HealthScore, Scorecard
from health.scoring import recompute_health, reproduce_score
from tests.factories import AccountFactory
from tests.health.conftest import T, events, measure, scorecard, surveys

DAY_MAPPING = {"type": "thresholds", "points": [[0, 0], [2, 50], [4, 100]]}
NPS_MAPPING = {"type": "linear", "zero_at": -100, "full_at": 100}


def _card():
    return scorecard(
        [
            measure("login_days", "active_days", DAY_MAPPING, weight=2, event="login", days=30),
            measure("nps", "nps_latest", NPS_MAPPING, weight=1.5, group="sentiment"),
            measure("reports", "event_count", DAY_MAPPING, weight=0.25, event="report", days=7),
        ]
    )


def _to_full_form(score: HealthScore) -> None:
    """Rewrite a row as the recompute stored it before the lean form (every rule in every row)."""
    HealthScore.objects.filter(pk=score.pk).update(components=score.full_components())


def test_the_recompute_stores_lean_components_and_the_rules_once(db):
    card = _card()
    account = AccountFactory(external_id="lean")
    events(account, ("login", "2026-03-09 10:00", "a@lean.example", None))
    surveys(account, ("nps", 9, "2026-03-01 10:00"))
    recompute_health(now=T)
    score = HealthScore.objects.get(account=account)
    assert all(isinstance(c, list) and len(c) == 5 for c in score.components)
    assert [c[0] for c in score.components] == ["login_days", "nps", "reports"]
    card.refresh_from_db()
    assert [rule["label"] for rule in card.rules] == ["login_days", "nps", "reports"]
    assert card.rules[1] == {
        "measure": "nps",
        "label": "nps",
        "group": "sentiment",
        "metric": "nps_latest",
        "params": {},
        "mapping": NPS_MAPPING,
        "weight": 1.5,
    }
    (login, nps, reports) = score.full_components()
    assert (login["raw"], login["points"], login["weight"]) == (1, 0, 2)
    assert (nps["raw"], nps["points"], nps["group"]) == (9, 54.5, "sentiment")
    assert reports["raw"] == 0 and reports["mapping"] == DAY_MAPPING
    assert reproduce_score(score) == score.score


def test_a_lean_row_explains_exactly_like_the_same_row_in_full(db):
    _card()
    account = AccountFactory(external_id="same")
    events(account, ("login", "2026-03-01 10:00", None, None))
    recompute_health(now=T.replace(day=5))
    events(account, ("login", "2026-03-09 10:00", None, None), ("login", "2026-03-08 10:00", None, None))
    surveys(account, ("nps", 3, "2026-03-07 10:00"))
    recompute_health(now=T)
    lean = explain_health(account=Account.objects.get(pk=account.pk), now=T)
    assert lean["changes"] and lean["components"][1]["raw"] == 3
    for score in HealthScore.objects.filter(account=account):
        _to_full_form(score)
    stored = HealthScore.objects.get(account=account, computed_at=T).components
    assert all(isinstance(c, dict) for c in stored)
    full = explain_health(account=Account.objects.get(pk=account.pk), now=T)
    assert json.dumps(lean) == json.dumps(full)


def test_changes_are_found_between_a_full_row_and_a_lean_one(db):
    _card()
    account = AccountFactory(external_id="mixed")
    recompute_health(now=T.replace(day=5))
    _to_full_form(HealthScore.objects.get(account=account))
    events(account, *[("login", f"2026-03-0{d} 10:00", None, None) for d in (6, 7, 8, 9)])
    recompute_health(now=T)
    body = explain_health(account=Account.objects.get(pk=account.pk), now=T)
    assert body["changes"] == [{"measure": "login_days", "raw_before": 0, "raw_now": 4, "points_delta": 100}]


def test_a_scorecard_without_stored_rules_is_read_from_its_measures(db, django_assert_num_queries):
    card = _card()
    account = AccountFactory(external_id="norules")
    recompute_health(now=T)
    Scorecard.objects.filter(pk=card.pk).update(rules=None)
    score = HealthScore.objects.select_related("scorecard").get(account=account)
    with django_assert_num_queries(1):  # the measures, once
        full = score.full_components()
    assert [c["measure"] for c in full] == ["login_days", "nps", "reports"]
    assert full[0]["weight"] == 2 and full[2]["weight"] == 0.25 and full[1]["raw"] is None
