"""The recompute's SQL scoring (health/sql_scoring.py) gives what the Python scoring gives.

Two engines must agree: ``score_measures`` (previews, backtests, SQLite) and the statement that
scores every account in PostgreSQL. First on random readings, then end to end on accounts with
data for every metric, two scorecards and an override.
"""

import datetime as dt
import json
import random
from decimal import Decimal

import pytest
from django.db import connection

from accounts.models import Account
from health.metrics import METRICS, MetricCache, Reading
from health.models import HealthScore, Override, Scorecard
from health.scoring import (
    MeasureRule,
    _CompiledRule,
    _json_number,
    _score_row,
    band_for,
    compute_scores,
    recompute_health,
    scorecard_picker,
)
from health.sql_scoring import scorecard_select
from tests.factories import AccountFactory
from tests.health.conftest import T, events, measure, scorecard, surveys, tickets, touchpoints

pytestmark = pytest.mark.django_db

MAPPINGS = [
    {"type": "thresholds", "points": [[0, 100], [7, 60], [30, 0]]},
    {"type": "thresholds", "points": [[5, 10], [10, 50], [7, 90]]},  # not sorted: the loop stops at 10
    {"type": "linear", "zero_at": 0, "full_at": 7},  # thirds: contributions that do not divide evenly
    {"type": "linear", "zero_at": 30, "full_at": 0},
    {"type": "thresholds", "points": [[0.5, 12.345], [1.25, 99.995]]},  # points rounded in the JSON
]
VALID_MAPPINGS = [m for i, m in enumerate(MAPPINGS) if i != 1]  # a scorecard's thresholds increase
# Metrics with an empty reading (counts: 0) and without (missing when there is no data).
RULES = [
    MeasureRule(f"m{i}", f"Measure {i}", group, metric, {}, weight, mapping)
    for i, (group, metric, weight, mapping) in enumerate(
        [
            ("usage", "event_count", Decimal("3"), MAPPINGS[0]),
            ("usage", "usage_trend", Decimal("1.5"), MAPPINGS[1]),
            ("support", "nps_latest", Decimal("2.25"), MAPPINGS[2]),
            ("support", "csat_average", Decimal("1"), MAPPINGS[3]),
            ("sentiment", "days_since_touchpoint", Decimal("0.5"), MAPPINGS[2]),
            ("sentiment", "nps_average", Decimal("0.75"), MAPPINGS[4]),
        ]
    )
]


def _parsed(component: dict) -> dict:
    """A full component with its time parsed (the two engines format fractions of seconds apart)."""
    at = component["data_at"]
    return {**component, "data_at": dt.datetime.fromisoformat(at) if at else None}


def _component_times(components: list) -> list:
    """Components with their times parsed: PostgreSQL writes 12:30:15.12, Python 12:30:15.120000."""
    return [
        [*values[:4], dt.datetime.fromisoformat(values[4]) if values[4] else None] for values in components
    ]


def test_the_sql_scoring_matches_the_python_scoring_on_random_readings():
    rng = random.Random(11)
    when = dt.datetime(2026, 3, 1, 12, 30, 15, tzinfo=dt.UTC)
    rows = []
    for account_id in range(1, 2001):
        row = [account_id]
        for _ in RULES:
            value = None if rng.random() < 0.25 else Decimal(rng.randint(-500, 4000)) / Decimal(100)
            at = None
            if value is not None and rng.random() < 0.7:
                fraction = rng.choice([0, 120_000, 5])  # times with and without fractions of seconds
                at = when - dt.timedelta(minutes=rng.randint(0, 10_000), microseconds=fraction)
            row += [value, at]
        rows.append(row)
    columns = ", ".join(f"v{i} numeric, d{i} timestamptz" for i in range(len(RULES)))
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE random_readings (account_id bigint, {columns})")
        with cursor.cursor.copy("COPY random_readings FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        bands = {"red_below": Decimal(45), "green_from": Decimal(75)}
        select = scorecard_select(RULES, list(range(len(RULES))), **bands, source="random_readings")
        cursor.execute(f"{select} ORDER BY account_id")
        scored = cursor.fetchall()
    assert len(scored) == len(rows)
    compiled = [_CompiledRule(rule) for rule in RULES]
    for row, (account_id, score, band, *json_texts, data_at) in zip(rows, scored, strict=True):
        assert account_id == row[0]
        components, groups, missing = (json.loads(text) for text in json_texts)  # jsonb comes as text
        readings = [
            Reading(row[1 + 2 * i], row[2 + 2 * i]) if row[1 + 2 * i] is not None else c.empty
            for i, c in enumerate(compiled)
        ]
        expected = _score_row(compiled, readings)
        assert score == expected[0]
        assert band == (band_for(expected[0], **bands) or "")
        assert _component_times(components) == _component_times(json.loads(expected[1]))
        assert (groups, missing, data_at) == (json.loads(expected[2]), json.loads(expected[3]), expected[4])
    assert {band for _, _, band, *_ in scored} >= {"red", "yellow", "green"}  # every branch is exercised


EVERY_METRIC = {
    "event_count": {"event": "login", "days": 7},
    "active_days": {"event": "login", "days": 30},
    "active_contacts": {"days": 30},
    "days_since_last_event": {"event": "login"},
    "event_value_sum": {"event": "order_placed", "days": 30},
    "usage_trend": {"event": "login", "days": 7},
    "open_tickets": {},
    "urgent_open_tickets": {},
    "tickets_opened": {"days": 30},
    "nps_latest": {},
    "nps_average": {"days": 60},
    "csat_average": {"days": 30},
    "milestone_completion": {},
    "overdue_milestones": {},
    "days_to_renewal": {},
    "days_since_touchpoint": {},
    "clv": {},
    "rfm_score": {},
}


@pytest.fixture
def every_metric_accounts():
    """Accounts with data for most metrics, a segment with its own scorecard and a churned one."""
    assert set(EVERY_METRIC) == set(METRICS)
    measures = [
        measure(
            metric,
            metric,
            VALID_MAPPINGS[i % len(VALID_MAPPINGS)],
            weight=1 + i % 3,
            group=("usage", "support", "sentiment")[i % 3],
            **params,
        )
        for i, (metric, params) in enumerate(EVERY_METRIC.items())
    ]
    scorecard(measures)
    scorecard(measures[:5], segment="Enterprise", red_below=30, green_from=60)
    rich = AccountFactory(external_id="rich", renewal_date=dt.date(2026, 4, 9), segment="smb")
    big = AccountFactory(external_id="big", renewal_date=dt.date(2026, 6, 1), segment=" enterprise ")
    quiet = AccountFactory(external_id="quiet", renewal_date=None)
    gone = AccountFactory(external_id="gone", status=Account.Status.CHURNED)
    for account in (rich, big, gone):
        events(
            account,
            ("login", "2026-03-10 11:59", "c1@x.example", None),
            ("login", "2026-03-09 08:00", "c2@x.example", None),
            ("login", "2026-03-01 10:00", "c1@x.example", None),
            ("report_viewed", "2026-03-05 10:00", "c3@x.example", None),
            ("order_placed", "2026-03-05 10:00", None, "100.50"),
        )
        tickets(
            account,
            (f"{account.external_id}-1", "urgent", "open", "2026-03-01 09:00", None),
            (f"{account.external_id}-2", "normal", "closed", "2026-03-02 09:00", "2026-03-05 09:00"),
        )
        surveys(account, ("nps", 9, "2026-02-01 10:00"), ("nps", 6, "2026-03-05 10:00"))
        surveys(account, ("csat", 4, "2026-03-02 10:00"))
        touchpoints(account, "2026-02-20 10:00")
    Override.objects.create(
        account=rich, band="green", reason="exec sponsor", expires_at=T + dt.timedelta(days=5), created_at=T
    )
    return rich, big, quiet, gone


SCORING = "CREATE TEMPORARY TABLE health_run_scored ON COMMIT DROP AS "


@pytest.fixture(params=["planned", "parallel"])
def planner(request):
    """As PostgreSQL plans it (serial for so few rows), or with parallel workers wherever it may.

    The recompute scores into a temporary table by a ``CREATE TABLE AS`` so that large runs get
    parallel workers: their rows must be the same. Gives the plans of the scoring statements run
    under it (``EXPLAIN`` of each, just before it runs).
    """
    if request.param == "parallel":
        force = "debug_parallel_query" if connection.pg_version >= 160000 else "force_parallel_mode"
        with connection.cursor() as cursor:
            for setting in ("parallel_setup_cost", "parallel_tuple_cost", "min_parallel_table_scan_size"):
                cursor.execute(f"SET {setting} = 0")  # undone with the test's transaction
            cursor.execute(f"SET {force} = on")
    plans = []

    def explain_scoring(execute, sql, params, many, context):
        if sql.startswith(SCORING):
            with context["connection"].cursor() as cursor:
                cursor.execute("EXPLAIN " + sql.removeprefix(SCORING), params)
                plans.append("\n".join(row[0] for row in cursor.fetchall()))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(explain_scoring):
        yield request.param, plans
    if request.param == "parallel":  # the forced plans did use workers
        assert plans and all("Gather" in plan for plan in plans)


@pytest.mark.parametrize("scorecards", ["two", "one"])
def test_the_recompute_stores_what_the_python_engine_computes_for_every_metric(
    every_metric_accounts, planner, scorecards
):
    """With two scorecards the readings are computed once for both; with one (the default) they
    are inlined into its scoring."""
    rich, big, quiet, gone = every_metric_accounts
    if scorecards == "one":
        Scorecard.objects.filter(segment="Enterprise").update(status=Scorecard.Status.RETIRED)
    changes = recompute_health(now=T)

    active = list(Scorecard.objects.filter(status=Scorecard.Status.ACTIVE).prefetch_related("measures"))
    pick = scorecard_picker(active)
    scope = Account.objects.filter(status=Account.Status.ACTIVE)
    assigned = {pk: pick(segment) for pk, segment in scope.values_list("pk", "segment")}
    expected = compute_scores(as_of=T, scope=scope, assigned=assigned, cache=MetricCache())

    stored = {h.account_id: h for h in HealthScore.objects.filter(computed_at=T).select_related("scorecard")}
    assert set(stored) == set(expected) and gone.pk not in stored
    # " enterprise " matched, trimmed, any case; the default scorecard once that one is retired
    assert stored[big.pk].scorecard.segment == ("Enterprise" if scorecards == "two" else "")
    for account_id, scored in expected.items():
        row = stored[account_id]
        assert row.score == scored.score
        assert [_parsed(c) for c in row.full_components()] == [
            _parsed(json.loads(json.dumps(c.as_json()))) for c in scored.components
        ]
        assert row.groups == {group: _json_number(score) for group, score in scored.groups.items()}
        assert row.missing == scored.missing and row.data_at == scored.data_at
        card = assigned[account_id]
        computed = band_for(scored.score, red_below=card.red_below, green_from=card.green_from)
        assert row.computed_band == (computed or "")
    assert stored[rich.pk].band == "green" and stored[rich.pk].override_id is not None
    assert stored[quiet.pk].missing  # no data: the metrics without an empty reading are missing
    assert changes.accounts == 3 and sum(changes.bands.values()) == 3
    assert {c.account_id for c in changes.scores} == {rich.pk, big.pk, quiet.pk}  # all new
    for account in (rich, big, quiet):
        account.refresh_from_db()
        assert (account.health_score, account.health_band or "") == (
            stored[account.pk].score,
            stored[account.pk].band,
        )

    again = recompute_health(now=T + dt.timedelta(minutes=1))
    assert again.scores == [] and again.accounts == 3  # nothing moved: no account rewritten
    rerun = recompute_health(now=T)
    assert HealthScore.objects.filter(computed_at=T).count() == 3 and rerun.accounts == 3
