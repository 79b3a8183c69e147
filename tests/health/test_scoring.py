"""Scores worked out by hand: mappings, renormalisation, bands, overrides, segments, as-of, history."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine

from accounts.models import Account
from health.metrics import Reading
from health.models import HealthScore, Scorecard
from health.overrides import lift_overrides, set_override
from health.scoring import (
    MeasureRule,
    band_for,
    points_for,
    recompute_health,
    reproduce_score,
    score_drops,
    score_measures,
)
from tests.factories import AccountFactory
from tests.health.conftest import T, events, measure, scorecard

RECENCY = {"type": "thresholds", "points": [[0, 100], [7, 60], [30, 0]]}
VOLUME = {"type": "thresholds", "points": [[0, 0], [5, 50], [20, 100]]}
STARTS_HIGH = {"type": "thresholds", "points": [[5, 10], [10, 50]]}
HIGHER_BETTER = {"type": "linear", "zero_at": 0, "full_at": 10}
LOWER_BETTER = {"type": "linear", "zero_at": 30, "full_at": 0}
DAY = dt.timedelta(days=1)


@pytest.mark.parametrize(
    ("mapping", "raw", "points"),
    [
        (RECENCY, "-1", 100),  # below every value: the first pair's points
        (RECENCY, "0", 100),  # equal to a value
        (RECENCY, "7", 60),
        (RECENCY, "10", 60),  # between: the greatest value <= raw
        (RECENCY, "29.99", 60),
        (RECENCY, "30", 0),
        (RECENCY, "400", 0),
        (VOLUME, "4", 0),
        (VOLUME, "5", 50),
        (VOLUME, "19.5", 50),
        (VOLUME, "20", 100),
        (STARTS_HIGH, "2", 10),  # below the first value 5: its points, not 0
        (HIGHER_BETTER, "2.5", 25),
        (HIGHER_BETTER, "0", 0),
        (HIGHER_BETTER, "-3", 0),  # clamped
        (HIGHER_BETTER, "12", 100),  # clamped
        (LOWER_BETTER, "6", 80),  # full_at < zero_at: lower is better
        (LOWER_BETTER, "30", 0),
        (LOWER_BETTER, "40", 0),
        (LOWER_BETTER, "-5", 100),
    ],
)
def test_points_follow_the_mapping_semantics_of_the_api(mapping, raw, points):
    assert points_for(mapping, Decimal(raw)) == Decimal(points)


def rule(key: str, weight: str, mapping: dict, group: str = "usage") -> MeasureRule:
    return MeasureRule(key, key, group, "event_count", {}, Decimal(weight), mapping)


def reading(value: str) -> Reading:
    return Reading(Decimal(value), None)


def test_score_is_the_weighted_mean_over_the_measures_with_data_renormalised():
    rules = [rule("a", "2", HIGHER_BETTER), rule("b", "1", RECENCY, "support"), rule("c", "1", VOLUME)]
    scored = score_measures(rules, {"a": reading("8"), "b": reading("10"), "c": None})
    # (2 * 80 + 1 * 60) / 3 = 73.33… → 73.3; c is missing and its weight is left out.
    assert scored.score == Decimal("73.3")
    assert scored.missing == ["c"]
    assert [c.points for c in scored.components] == [Decimal(80), Decimal(60), None]
    assert [round(c.contribution, 4) for c in scored.components[:2]] == [
        Decimal("53.3333"),
        Decimal("20.0000"),
    ]
    assert scored.groups == {"usage": Decimal("80.0"), "support": Decimal("60.0")}


def test_score_rounds_half_up_to_one_decimal():
    rules = [rule("a", "1", {"type": "linear", "zero_at": 0, "full_at": 8}), rule("b", "1", VOLUME)]
    # a: 1/8 → 12.5 points; b: 0 points; (12.5 + 0) / 2 = 6.25 → 6.3
    assert score_measures(rules, {"a": reading("1"), "b": reading("0")}).score == Decimal("6.3")


def test_no_measure_with_data_gives_no_score():
    scored = score_measures([rule("a", "1", VOLUME)], {"a": None})
    assert scored.score is None
    assert scored.missing == ["a"]


@pytest.mark.parametrize(
    ("score", "band"),
    [("0", "red"), ("39.9", "red"), ("40", "yellow"), ("69.9", "yellow"), ("70", "green"), ("100", "green")],
)
def test_bands_by_red_below_and_green_from(score, band):
    assert band_for(Decimal(score), red_below=Decimal(40), green_from=Decimal(70)) == band


# --- recompute over the database -------------------------------------------------------------


def logins(account: Account, count: int, *, day: str = "2026-03-09") -> None:
    events(account, *[("login", f"{day} {8 + i % 10:02d}:{i // 10:02d}", None, None) for i in range(count)])


def test_recompute_scores_accounts_writes_history_and_the_account_row(linear_logins):
    account = AccountFactory()
    logins(account, 8)
    changes = recompute_health(now=T)
    account.refresh_from_db()
    assert account.health_score == Decimal("80.0")
    assert account.health_band == "green"
    score = HealthScore.objects.get(account=account)
    assert score.scorecard == linear_logins
    (component, *_) = score.full_components()
    assert component["raw"] == 8 and component["points"] == 80 and component["label"]
    assert reproduce_score(score) == score.score
    assert changes.accounts == Account.objects.filter(status="active").count()
    assert [(c.account_id, c.from_band, c.to_band) for c in changes.entered("green")] == [
        (account.pk, None, "green")
    ]


def test_a_rerun_at_the_same_time_changes_nothing(linear_logins):
    account = AccountFactory()
    logins(account, 8)
    recompute_health(now=T)
    changes = recompute_health(now=T)
    assert HealthScore.objects.filter(account=account).count() == 1
    assert changes.band_changes == []


def test_band_entered_and_score_drop_between_runs(linear_logins):
    account = AccountFactory()
    logins(account, 8, day="2026-03-02")  # in the 7-day window of T - 2 days, not of T + 6 days
    recompute_health(now=T - 2 * DAY)
    logins(account, 3, day="2026-03-12")
    changes = recompute_health(now=T + 6 * DAY)
    assert [(c.from_band, c.to_band) for c in changes.entered("red")] == [("green", "red")]
    (drop,) = changes.drops_since_previous(40)
    assert (drop.score_before, drop.score_now) == (Decimal("80.0"), Decimal("30.0"))
    (peak_drop,) = score_drops(now=T + 6 * DAY, min_drop=50, days=10)
    assert (peak_drop.account_id, peak_drop.peak, peak_drop.score) == (
        account.pk,
        Decimal("80.0"),
        Decimal("30.0"),
    )
    assert score_drops(now=T + 6 * DAY, min_drop=51, days=10) == []
    assert score_drops(now=T + 6 * DAY, min_drop=50, days=5) == []  # the peak is 8 days old


def test_recompute_as_of_a_past_time_ignores_later_data(linear_logins):
    account = AccountFactory()
    logins(account, 2, day="2026-03-09")
    logins(account, 9, day="2026-03-11")  # after T
    recompute_health(now=T)
    assert HealthScore.objects.get(account=account).score == Decimal("20.0")


def test_a_segment_scorecard_wins_over_the_default(linear_logins):
    enterprise = scorecard(
        [
            measure(
                "logins",
                "event_count",
                {"type": "linear", "zero_at": 0, "full_at": 20},
                event="login",
                days=7,
            )
        ],
        segment="Enterprise",
    )
    big = AccountFactory(segment="enterprise")  # matched case-insensitively
    small = AccountFactory(segment="smb")
    logins(big, 8)
    logins(small, 8)
    recompute_health(now=T)
    assert HealthScore.objects.get(account=big).scorecard == enterprise
    assert HealthScore.objects.get(account=big).score == Decimal("40.0")
    assert HealthScore.objects.get(account=small).scorecard == linear_logins
    assert HealthScore.objects.get(account=small).score == Decimal("80.0")


def test_an_override_sets_the_band_until_it_expires(linear_logins, world):
    account = AccountFactory()
    logins(account, 8)
    with time_machine.travel(T, tick=False):
        set_override(
            actor=world.csm_a,
            account=account,
            band="red",
            reason="Champion left",
            expires_at=T + 3 * DAY,
            now=T,
        )
    account.refresh_from_db()
    assert account.health_band == "red"  # at once, before any recompute
    recompute_health(now=T + DAY)
    account.refresh_from_db()
    score = HealthScore.objects.get(account=account)
    assert (account.health_score, account.health_band, score.computed_band) == (
        Decimal("80.0"),
        "red",
        "green",
    )
    recompute_health(now=T + 4 * DAY)  # expired
    account.refresh_from_db()
    assert account.health_band == "green"  # the scored band again
    assert HealthScore.objects.get(account=account, computed_at=T + 4 * DAY).override is None


def test_lifting_an_override_restores_the_scored_band(linear_logins, world):
    account = AccountFactory()
    logins(account, 8)
    recompute_health(now=T)
    set_override(
        actor=world.csm_a, account=account, band="red", reason="Escalation", expires_at=T + DAY, now=T
    )
    assert lift_overrides(actor=world.csm_a, account=account, now=T) == 1
    account.refresh_from_db()
    assert account.health_band == "green"


def test_churned_accounts_are_not_scored(linear_logins):
    account = AccountFactory(status="churned")
    recompute_health(now=T)
    assert not HealthScore.objects.filter(account=account).exists()


def test_scores_point_at_the_version_that_made_them(linear_logins):
    account = AccountFactory()
    logins(account, 8)
    recompute_health(now=T)
    newer = scorecard(
        [
            measure(
                "logins",
                "event_count",
                {"type": "linear", "zero_at": 0, "full_at": 16},
                event="login",
                days=7,
            )
        ]
    )
    recompute_health(now=T + dt.timedelta(hours=1))
    first, second = HealthScore.objects.filter(account=account).order_by("computed_at")
    assert (first.scorecard, first.score) == (linear_logins, Decimal("80.0"))
    assert (second.scorecard, second.score) == (newer, Decimal("50.0"))
    linear_logins.refresh_from_db()
    assert linear_logins.status == Scorecard.Status.RETIRED
    assert reproduce_score(first) == first.score and reproduce_score(second) == second.score
