"""Property tests of the scoring maths (API.md, Health: mapping semantics and the score).

Pure functions, no database: the score is always in 0-100, never falls when one measure's points
rise, and is the weighted mean over the measures that have data (weights renormalised).
"""

import datetime as dt
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from health.metrics import Reading
from health.scoring import MeasureRule, band_for, points_for, score_measures, weighted_score

SETTINGS = settings(max_examples=200, derandomize=True, deadline=None, database=None)
AT = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

decimals = st.decimals(min_value=-(10**6), max_value=10**6, places=2, allow_nan=False, allow_infinity=False)
points = st.integers(min_value=0, max_value=100).map(Decimal)
weights = st.decimals(min_value=Decimal("0.01"), max_value=1000, places=2)


@st.composite
def mappings(draw):
    if draw(st.booleans()):
        values = sorted(set(draw(st.lists(decimals, min_size=1, max_size=6))))
        return {"type": "thresholds", "points": [[str(v), int(draw(points))] for v in values]}
    zero_at, full_at = draw(st.tuples(decimals, decimals).filter(lambda pair: pair[0] != pair[1]))
    return {"type": "linear", "zero_at": str(zero_at), "full_at": str(full_at)}


def rule(key: str, weight: Decimal, mapping: dict) -> MeasureRule:
    return MeasureRule(
        key=key, label=key, group="g", metric="event_count", params={}, weight=weight, mapping=mapping
    )


LINEAR_0_100 = {"type": "linear", "zero_at": "0", "full_at": "100"}  # points = raw, clamped


@st.composite
def scorecards(draw, mapping=None):
    n = draw(st.integers(min_value=1, max_value=6))
    rules = [rule(f"m{i}", draw(weights), mapping or draw(mappings())) for i in range(n)]
    readings = {
        r.key: (Reading(draw(decimals), AT) if draw(st.integers(0, 4)) else None) for r in rules
    }  # about one in five has no data
    return rules, readings


@SETTINGS
@given(mapping=mappings(), raw=decimals)
def test_points_are_always_between_0_and_100(mapping, raw):
    assert Decimal(0) <= points_for(mapping, raw) <= Decimal(100)


@SETTINGS
@given(mapping=mappings(), a=decimals, b=decimals)
def test_points_move_one_way_with_the_raw_value(mapping, a, b):
    low, high = sorted((a, b))
    if mapping["type"] == "linear" and Decimal(mapping["full_at"]) < Decimal(mapping["zero_at"]):
        assert points_for(mapping, low) >= points_for(mapping, high)  # lower is better
    elif mapping["type"] == "linear":
        assert points_for(mapping, low) <= points_for(mapping, high)
    else:  # thresholds: the points of the greatest value <= raw
        pairs = [(Decimal(v), Decimal(p)) for v, p in mapping["points"]]
        below = [p for v, p in pairs if v <= high]
        assert points_for(mapping, high) == (below[-1] if below else pairs[0][1])


@SETTINGS
@given(card=scorecards())
def test_score_is_in_0_to_100_or_none_without_data(card):
    rules, readings = card
    score = score_measures(rules, readings).score
    if all(reading is None for reading in readings.values()):
        assert score is None
    else:
        assert Decimal(0) <= score <= Decimal(100)
        assert score == score.quantize(Decimal("0.1"))


@SETTINGS
@given(card=scorecards(mapping=LINEAR_0_100), data=st.data())
def test_score_never_falls_when_one_measures_points_rise(card, data):
    rules, readings = card
    with_data = [key for key, reading in readings.items() if reading is not None]
    if not with_data:
        return
    key = data.draw(st.sampled_from(with_data))
    raised = {**readings, key: Reading(readings[key].value + data.draw(st.integers(1, 200)), AT)}
    assert score_measures(rules, raised).score >= score_measures(rules, readings).score


@SETTINGS
@given(card=scorecards(), factor=st.integers(min_value=2, max_value=50))
def test_weights_are_renormalised_over_the_measures_with_data(card, factor):
    rules, readings = card
    scored = score_measures(rules, readings)
    present = [r for r in rules if readings[r.key] is not None]
    # A measure without data counts as absent, not as zero points.
    assert scored.score == score_measures(present, readings).score
    assert set(scored.missing) == {r.key for r in rules if readings[r.key] is None}
    # Only the ratio of the weights matters.
    scaled = [rule(r.key, r.weight * factor, r.mapping) for r in rules]
    assert score_measures(scaled, readings).score == scored.score
    # And it is the weighted mean of the points, as API.md defines it.
    expected = weighted_score((r.weight, points_for(r.mapping, readings[r.key].value)) for r in present)
    assert scored.score == expected
    if present:
        contributions = sum(c.contribution for c in scored.components if c.contribution is not None)
        assert abs(contributions - scored.score) <= Decimal("0.05")


@SETTINGS
@given(score=st.decimals(min_value=0, max_value=100, places=1), red=points, green=points)
def test_band_follows_the_thresholds(score, red, green):
    red_below, green_from = sorted((red, green))
    band = band_for(score, red_below=red_below, green_from=green_from)
    assert band == ("red" if score < red_below else "green" if score >= green_from else "yellow")
