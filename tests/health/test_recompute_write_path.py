"""The recompute's fast path (compiled rules, JSON text, COPY) stores exactly what score_measures gives."""

import datetime as dt
import json
import random
from decimal import Decimal

import pytest

from health.metrics import Reading
from health.models import HealthScore, expand_components
from health.scoring import (
    MeasureRule,
    _CompiledRule,
    _score_row,
    recompute_health,
    reproduce_score,
    rule_head,
    score_measures,
)
from tests.health.conftest import T, events

MAPPINGS = [
    {"type": "thresholds", "points": [[0, 100], [7, 60], [30, 0]]},
    {"type": "thresholds", "points": [[5, 10], [10, 50]]},
    {"type": "linear", "zero_at": 0, "full_at": 7},  # thirds: contributions that do not divide evenly
    {"type": "linear", "zero_at": 30, "full_at": 0},
]
RULES = [
    MeasureRule(
        f"m{i}", f"Measure {i}", group, "event_count", {"event": "login", "days": 30}, weight, mapping
    )
    for i, (group, weight, mapping) in enumerate(
        [
            ("usage", Decimal("3"), MAPPINGS[0]),
            ("usage", Decimal("1.5"), MAPPINGS[1]),
            ("support", Decimal("2.25"), MAPPINGS[2]),
            ("support", Decimal("1"), MAPPINGS[3]),
            ("sentiment", Decimal("0.5"), MAPPINGS[2]),
        ]
    )
]


def as_stored(scored) -> tuple:
    """score_measures' result in the stored (JSON round-tripped) form the old write path gave."""
    from health.scoring import _json_number

    return (
        scored.score,
        json.loads(json.dumps([c.as_json() for c in scored.components])),
        json.loads(json.dumps({g: _json_number(s) for g, s in scored.groups.items()})),
        scored.missing,
        scored.data_at,
    )


def test_the_fast_scoring_matches_score_measures_on_random_readings():
    compiled = [_CompiledRule(rule) for rule in RULES]
    heads = json.loads(json.dumps([rule_head(rule) for rule in RULES]))  # as the scorecard stores them
    rng = random.Random(7)
    when = dt.datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=dt.UTC)
    for _ in range(2000):
        readings = [
            None
            if rng.random() < 0.25
            else Reading(
                Decimal(rng.randint(-500, 4000)) / Decimal(100),
                None if rng.random() < 0.3 else when - dt.timedelta(minutes=rng.randint(0, 10_000)),
            )
            for _ in RULES
        ]
        expected = as_stored(score_measures(RULES, {r.key: v for r, v in zip(RULES, readings, strict=True)}))
        score, components, groups, missing, data_at = _score_row(compiled, readings)
        full = expand_components(json.loads(components), lambda: heads)
        assert (score, full, json.loads(groups), json.loads(missing), data_at) == expected


def test_a_rerun_at_the_same_time_replaces_the_rows_and_scores_reproduce(db):
    from tests.factories import AccountFactory

    account = AccountFactory(external_id="fast")
    events(account, ("login", "2026-03-09 10:00", "a@fast.example", None))
    recompute_health(now=T)
    first = HealthScore.objects.get(account=account, computed_at=T)
    recompute_health(now=T)
    (again,) = HealthScore.objects.filter(account=account, computed_at=T)
    assert (again.score, again.components, again.groups, again.missing) == (
        first.score,
        first.components,
        first.groups,
        first.missing,
    )
    assert again.score is not None and reproduce_score(again) == again.score
    account.refresh_from_db()
    assert account.health_score == again.score and account.health_band == again.band


@pytest.mark.parametrize("size", [3])
def test_recompute_of_a_subset_scores_only_those_accounts(db, size):
    from accounts.models import Account
    from tests.factories import AccountFactory

    accounts = [AccountFactory(external_id=f"sub-{i}") for i in range(size)]
    changes = recompute_health(now=T, accounts=Account.objects.filter(pk=accounts[1].pk))
    assert changes.accounts == 1
    assert list(HealthScore.objects.values_list("account_id", flat=True)) == [accounts[1].pk]


def test_remembered_values_give_what_each_row_would_give():
    """The memo is keyed by value: 8 then 8.00 (equal, another exponent) must store the same texts."""
    compiled = [_CompiledRule(rule) for rule in RULES]
    heads = json.loads(json.dumps([rule_head(rule) for rule in RULES]))
    for raw in ("8", "8.00", "8.0000", "2.5", "2.50", "-0", "0"):
        readings = [Reading(Decimal(raw), None)] * len(RULES)
        expected = as_stored(score_measures(RULES, {r.key: v for r, v in zip(RULES, readings, strict=True)}))
        score, components, groups, missing, data_at = _score_row(compiled, readings)
        full = expand_components(json.loads(components), lambda: heads)
        assert (score, full, json.loads(groups), json.loads(missing), data_at) == expected


def test_the_accounts_follow_each_run_when_only_some_scores_move(linear_logins):
    """Accounts whose score did not move are skipped by the update; the others take the new one."""
    from accounts.models import Account
    from tests.factories import AccountFactory

    moving, steady = AccountFactory(external_id="moving"), AccountFactory(external_id="steady")
    events(moving, ("login", "2026-03-09 10:00", None, None))
    events(steady, *[("login", f"2026-03-0{d} 10:00", None, None) for d in (5, 6)])
    recompute_health(now=T)
    events(moving, *[("login", f"2026-03-0{d} 11:00", None, None) for d in (6, 7, 8)])
    recompute_health(now=T + dt.timedelta(hours=1))
    both = Account.objects.filter(pk__in=[moving.pk, steady.pk])
    rows = dict(both.values_list("external_id", "health_score"))
    assert rows == {"moving": Decimal("40.0"), "steady": Decimal("20.0")}
    Account.objects.filter(pk=steady.pk).update(health_score=None, health_band=None)  # out of step
    recompute_health(now=T + dt.timedelta(hours=2))
    steady.refresh_from_db()
    assert (steady.health_score, steady.health_band) == (Decimal("20.0"), "red")
