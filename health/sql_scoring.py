"""The recompute on PostgreSQL: two statements score every account, no reading leaves the database.

Each metric's readings are a SQL relation (``metrics.relations``), joined to the accounts in
scope once; each scorecard's measures then map them to points (a ``CASE`` for thresholds, a clamp
for linear), weigh them over the measures with data and round, exactly as ``score_measures``
does in Python (``tests/health/test_sql_scoring.py`` compares both on random readings), into a
temporary table (a ``CREATE TABLE AS``, which may get parallel workers). The second statement
writes the history rows from it, updates the accounts whose score or band moved and returns
those moves and the count per band. The few metrics computed in Python (the renewal date
known at T, CLV, RFM) are streamed into temporary tables first.

Numbers: PostgreSQL ``numeric`` is exact like ``Decimal``; ``ROUND`` rounds half away from zero
like ``ROUND_HALF_UP``; a division is carried to at least 16 significant digits where ``Decimal``
carries 28, so only a quotient within 1e-16 of a rounding tie could round differently.
"""

import datetime as dt
import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal

from django.db import connection
from django.db.models import QuerySet

from accounts.models import Account
from health.band_entry import set_entries_from_history
from health.metrics import METRICS, MetricCache, Relation, relations
from health.models import HealthScore, Override, Scorecard
from health.scoring import (
    HUNDREDTH,
    UNSCORED,
    BandChange,
    HealthChanges,
    MeasureRule,
    ScoreChange,
    _json_number,
    _json_text,
    scorecard_picker,
)

HISTORY = HealthScore._meta.db_table
ACCOUNTS = Account._meta.db_table


def _text(value: str) -> str:
    """A SQL string literal (standard strings: only quotes are special; ``%`` doubled for the driver)."""
    return "'" + str(value).replace("'", "''").replace("%", "%%") + "'"


def _number(value: Decimal | int | float | str) -> str:
    """A SQL numeric literal, exact (``Decimal`` of the stored text)."""
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    if not number.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return f"{number}::numeric"


COPY_CHUNK = 5000


def _python_relation(index: int, metric: str, params: dict, *, as_of, scope, cache) -> Relation:
    """A metric without a SQL form: its readings streamed into a temporary table, once.

    In chunks, each its own COPY: the stream reads from the same connection (a server-side cursor,
    the audit log), which cannot run a query while a COPY is in progress.
    """
    table = f"health_run_readings_{index}"
    rows = iter(METRICS[metric].compute(params, as_of=as_of, accounts=scope, cache=cache))
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{table}")
        cursor.execute(
            f"CREATE TEMPORARY TABLE {table} (account_id bigint PRIMARY KEY, value numeric NOT NULL,"
            " data_at timestamptz) ON COMMIT DROP"
        )
        while chunk := list(itertools.islice(rows, COPY_CHUNK)):
            with cursor.cursor.copy(f"COPY pg_temp.{table} FROM STDIN") as copy:
                for account_id, reading in chunk:
                    copy.write_row((account_id, reading.value, reading.data_at))
    return Relation(f"SELECT * FROM pg_temp.{table}", (), "{s}.value", "{s}.data_at")


def _thresholds(raw: str, pairs: Sequence[tuple[str, str]]) -> str:
    """``CASE`` over ``(value, result)`` pairs as ``points_for`` walks a thresholds mapping.

    The Python loop keeps the points of the last pair of the leading run of values <= raw (the
    first pair's points below them all): it stops at the first value above raw. A NULL raw falls
    through to the ``ELSE``; callers decide first what a missing reading gives.
    """
    branches = [f"WHEN {raw} < {pairs[0][0]} THEN {pairs[0][1]}"]
    branches += [
        f"WHEN {raw} < {value} THEN {previous}"
        for (value, _), (_, previous) in zip(pairs[1:], pairs[:-1], strict=True)
    ]
    return f"CASE {' '.join(branches)} ELSE {pairs[-1][1]} END"


def _points(mapping: Mapping, raw: str) -> str:
    """``points_for`` as SQL over the expression ``raw`` (NULL stays NULL)."""
    if mapping["type"] == "thresholds":
        pairs = [(_number(value), _number(points)) for value, points in mapping["points"]]
        return f"CASE WHEN {raw} IS NULL THEN NULL ELSE {_thresholds(raw, pairs)} END"
    zero_at, full_at = Decimal(str(mapping["zero_at"])), Decimal(str(mapping["full_at"]))
    return (
        f"(100 * LEAST(GREATEST(({raw} - {_number(zero_at)}) / {_number(full_at - zero_at)}, 0::numeric),"
        " 1::numeric))"
    )


def _points_text(mapping: Mapping, raw: str, points: str) -> str:
    """The JSON text of a component's points (to the hundredth, as ``_score_row`` writes them).

    Thresholds give one of a few values, whose texts are written here once; linear points are
    rounded and formatted by PostgreSQL.
    """
    if mapping["type"] != "thresholds":
        return f"TRIM_SCALE(ROUND({points}, 2))::text"
    pairs = [
        (_number(value), _text(_json_text(_json_number(Decimal(str(p)), HUNDREDTH))))
        for value, p in mapping["points"]
    ]
    return _thresholds(raw, pairs)  # only for a reading: a missing one has its own text


def _component(rule: MeasureRule, i: int, weight: str) -> str:
    """The JSON text of measure ``i``'s lean component, ``[key, raw, points, contribution, data_at]``.

    Built as text and parsed once per row: ``jsonb_build_array`` per component cost twice as much.
    """
    key = _text(json.dumps(rule.key))
    points = _points_text(rule.mapping, f"x{i}", f"p{i}")
    return (
        f"CASE WHEN x{i} IS NULL THEN '[' || {key} || ', null, null, null, null]'"
        f" ELSE '[' || {key} || ', ' || TRIM_SCALE(x{i})::text || ', ' || {points}"
        f" || ', ' || COALESCE(TRIM_SCALE(ROUND({weight} * p{i} / NULLIF(tw, 0), 2))::text, 'null')"
        f" || ', ' || COALESCE(to_json(d{i})::text, 'null') || ']' END"
    )


def scorecard_select(
    rules: Sequence[MeasureRule],
    columns: Sequence[int],
    *,
    red_below: Decimal,
    green_from: Decimal,
    source: str,
    carried: Sequence[str] = (),
) -> str:
    """SELECT the history values of each row of ``source`` from its readings, as ``score_measures``.

    ``rules[i]``'s reading is the value ``v<n>`` and time ``d<n>`` of each row of ``source``, ``n``
    being ``columns[i]``; ``source`` also has ``account_id``. Gives ``account_id, score, computed_band,
    components, groups, missing, data_at`` and the ``carried`` columns of ``source`` as they are.
    Each level is fenced (``OFFSET 0``) so that the points are computed once per row, not inlined
    into every expression that uses them.
    """
    carry = "".join(f", {column}" for column in carried)
    n = range(len(rules))
    empties = [METRICS[rule.metric].empty for rule in rules]
    raws = ", ".join(
        f"COALESCE(v{column}, {_number(empty)}) AS x{i}" if empty is not None else f"v{column} AS x{i}"
        for i, (column, empty) in enumerate(zip(columns, empties, strict=True))
    )
    times = ", ".join(f"d{column} AS d{i}" for i, column in enumerate(columns))
    level1 = f"SELECT account_id{carry}, {raws}, {times} FROM {source} OFFSET 0"
    points = ", ".join(f"{_points(rule.mapping, f'x{i}')} AS p{i}" for i, rule in enumerate(rules))
    level2 = f"SELECT *, {points} FROM ({level1}) r OFFSET 0"
    weights = [_number(rule.weight) for rule in rules]
    groups = list(dict.fromkeys(rule.group for rule in rules))

    def weight_of(members: Iterable[int]) -> str:
        return " + ".join(f"(CASE WHEN x{i} IS NULL THEN 0 ELSE {weights[i]} END)" for i in members) or "0"

    def total_of(members: Iterable[int]) -> str:
        return " + ".join(f"COALESCE({weights[i]} * p{i}, 0)" for i in members) or "0"

    members = {group: [i for i in n if rules[i].group == group] for group in groups}
    sums = [f"{weight_of(n)} AS tw", f"{total_of(n)} AS tot"]
    for g, group in enumerate(groups):
        sums += [f"{weight_of(members[group])} AS gw{g}", f"{total_of(members[group])} AS gt{g}"]
    level3 = f"SELECT *, {', '.join(sums)} FROM ({level2}) p OFFSET 0"
    components = " || ', ' || ".join(_component(rule, i, weights[i]) for i, rule in enumerate(rules))
    group_scores = ", ".join(
        f"{_text(group)}, CASE WHEN gw{g} <> 0 THEN TRIM_SCALE(ROUND(gt{g} / gw{g}, 1)) END"
        for g, group in enumerate(groups)
    )
    missing = ", ".join(f"CASE WHEN x{i} IS NULL THEN {_text(rule.key)} END" for i, rule in enumerate(rules))
    level4 = (
        f"SELECT account_id{carry}, CASE WHEN tw <> 0 THEN ROUND(tot / tw, 1) END AS score,"
        f" ('[' || {components} || ']')::jsonb AS components, jsonb_build_object({group_scores}) AS groups,"
        f" to_jsonb(array_remove(ARRAY[{missing}]::text[], NULL)) AS missing,"
        f" GREATEST({', '.join(f'd{i}' for i in n)}) AS data_at"
        f" FROM ({level3}) t OFFSET 0"
    )
    band = (
        f"CASE WHEN score IS NULL THEN '' WHEN score < {_number(red_below)} THEN '{Account.Band.RED.value}'"
        f" WHEN score >= {_number(green_from)} THEN '{Account.Band.GREEN.value}'"
        f" ELSE '{Account.Band.YELLOW.value}' END"
    )
    return (
        f"SELECT account_id, score, {band} AS computed_band, components, groups, missing, data_at{carry}"
        f" FROM ({level4}) s"
    )


def _source_key(relation: Relation) -> tuple[str, str]:
    """Relations with the same query and parameters read one source (parameters may be lists)."""
    return relation.source, repr(relation.params)


def _sql_with_params(rows: QuerySet) -> tuple[str, tuple]:
    sql, params = rows.query.sql_with_params()
    return sql, tuple(params)


def recompute_in_sql(
    *,
    now: dt.datetime,
    scope: QuerySet[Account],
    active: Sequence[Scorecard],
    rules: Mapping[int, list[MeasureRule]],
    full: bool,
) -> HealthChanges:
    """``recompute_health`` on PostgreSQL (inside its transaction): score, store, update, report.

    Two statements: the first scores every account in scope into a temporary table, the second
    stores the rows, updates the accounts that moved and reports them. A statement that writes
    runs without parallel workers, while a ``CREATE TABLE AS`` may use them for its query: at 1M
    accounts a daily recompute took 75.7-94.4 s against 83.6-123.3 s in one statement (back to
    back, rolled back; docs/performance.md, ninth round).
    """
    pick = scorecard_picker(active)
    segments = set(scope.order_by().values_list("segment", flat=True).distinct())
    cards = {segment: card for segment in segments if (card := pick(segment)) is not None}
    rerun = HealthScore.objects.filter(computed_at=now)
    # A rerun replaces its rows. Probed first: a full run writes ~1M rows at one time, so the
    # planner expects as many for any time and joined the scope to them (5.5 s at 1M accounts).
    rerun_found = rerun.exists()
    if rerun_found:
        rerun.filter(account__in=scope).delete()
    if not cards:
        return HealthChanges(computed_at=now, accounts=0, full=full)
    ctes, params, columns = _readings(now=now, scope=scope, cards=cards, rules=rules, full=full)
    _score_into_table(ctes, params, cards=cards, rules=rules, columns=columns)
    write_ctes, write_params = _writes(now=now)
    statement = (
        f"WITH {', '.join(write_ctes)}"
        " SELECT account_id, score_before, score, band_before, band, NULL::bigint FROM moved"
        " UNION ALL SELECT NULL, NULL, NULL, NULL, NULLIF(band, ''), COUNT(*) FROM inserted GROUP BY band"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, write_params)
        rows = cursor.fetchall()
    moves = sorted((row for row in rows if row[0] is not None), key=lambda row: row[0])
    bands = {band or UNSCORED: count for account_id, _, _, _, band, count in rows if account_id is None}
    if rerun_found:  # the band before was the replaced run's: the entries come from the history
        set_entries_from_history([pk for pk, _, _, before, band, _ in moves if band != before])
    return HealthChanges(
        computed_at=now,
        accounts=sum(bands.values()),
        bands=bands,
        band_changes=[BandChange(pk, before, band) for pk, _, _, before, band, _ in moves if band != before],
        scores=[
            ScoreChange(pk, score_before, score, before, band)
            for pk, score_before, score, before, band, _ in moves
        ],
        full=full,
    )


def _readings(
    *,
    now: dt.datetime,
    scope: QuerySet[Account],
    cards: Mapping[str, Scorecard],
    rules: Mapping[int, list[MeasureRule]],
    full: bool,
) -> tuple[list[str], list, dict[tuple[str, str], int]]:
    """The CTEs up to ``readings``: one row per account in scope with its scorecard, its score and
    band before, and ``v<n>``/``d<n>``, the value and time of each distinct (metric, params) ``n``.

    Gives the CTEs, their params and the column number of each measure spec.
    """
    first_rule = {rule.spec: rule for card in cards.values() for rule in rules[card.pk]}
    specs = list(first_rule)
    requests = [(first_rule[spec].metric, first_rule[spec].params) for spec in specs]
    # A full run joins every source to the active accounts anyway: no need to filter each one.
    found = relations(requests, as_of=now, accounts=None if full else scope)
    cache = MetricCache()
    for i, (relation, (metric, params)) in enumerate(zip(found, requests, strict=True)):
        if relation is None:
            found[i] = _python_relation(i, metric, params, as_of=now, scope=scope, cache=cache)
    # The distinct sources (metrics of one source share its pass), each one CTE.
    sources: dict[tuple[str, str], tuple[str, Relation]] = {}
    for relation in found:
        sources.setdefault(_source_key(relation), (f"s{len(sources)}", relation))
    ctes, params = [], []
    # Materialized: each source computed once, on its own (its scan and aggregate may still get
    # parallel workers). Inlined, the planner misjudged their sizes: at 1M accounts it ran the
    # milestones' aggregate once per account in a nested loop (stopped after 11 minutes).
    for alias, relation in sources.values():
        ctes.append(f"{alias} AS MATERIALIZED ({relation.source})")
        params += relation.params
    readings = []
    for i, relation in enumerate(found):
        s = sources[_source_key(relation)][0]
        where = relation.where.format(s=s)
        readings.append(f"CASE WHEN {where} THEN {relation.value.format(s=s)} END AS v{i}")
        readings.append(f"CASE WHEN {where} THEN {relation.data_at.format(s=s)} END AS d{i}")
    scope_sql, scope_params = _sql_with_params(
        scope.order_by().values("pk", "segment", "health_score", "health_band")
    )
    assignment = ", ".join(f"({_text(segment or '')}, {card.pk})" for segment, card in cards.items())
    joins = " ".join(f"LEFT JOIN {alias} ON {alias}.account_id = a.id" for alias, _ in sources.values())
    # Inlined into the scoring for one scorecard (the default); computed once for several.
    materialized = "MATERIALIZED" if len({card.pk for card in cards.values()}) > 1 else "NOT MATERIALIZED"
    ctes.append(
        f"readings AS {materialized} (SELECT a.id AS account_id, a.health_score AS score_before,"
        f" a.health_band AS band_before, cards.scorecard_id, {', '.join(readings)}"
        f" FROM ({scope_sql}) a (id, segment, health_score, health_band)"
        f" JOIN (VALUES {assignment}) cards (segment, scorecard_id)"
        f" ON cards.segment = COALESCE(a.segment, '') {joins})"
    )
    return ctes, params + list(scope_params), {spec: i for i, spec in enumerate(specs)}


SCORED = "health_run_scored"


def _score_into_table(
    ctes: Sequence[str],
    params: Sequence,
    *,
    cards: Mapping[str, Scorecard],
    rules: Mapping[int, list[MeasureRule]],
    columns: Mapping[tuple[str, str], int],
) -> None:
    """Each account's history values, scorecard and score and band before into ``pg_temp.SCORED``."""
    used = {card.pk: card for card in cards.values()}
    selects = [
        f"SELECT {card.pk} AS scorecard_id, c.* FROM ("
        + scorecard_select(
            rules[card.pk],
            [columns[rule.spec] for rule in rules[card.pk]],
            red_below=card.red_below,
            green_from=card.green_from,
            source=f"(SELECT * FROM readings WHERE scorecard_id = {card.pk}) r{card.pk}",
            carried=("score_before", "band_before"),
        )
        + ") c"
        for card in used.values()
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{SCORED}")
        cursor.execute(
            f"CREATE TEMPORARY TABLE {SCORED} ON COMMIT DROP AS WITH {', '.join(ctes)}"
            f" {' UNION ALL '.join(selects)}",
            params,
        )


def _writes(*, now: dt.datetime) -> tuple[list[str], list]:
    """The CTEs that write ``pg_temp.SCORED``: each row (an override sets the band) inserted into
    the history (``inserted``), the accounts whose score or band moved (``moved``), and their
    update. Gives the CTEs and their params."""
    overrides_sql, overrides_params = _sql_with_params(
        Override.objects.filter(lifted_at__isnull=True, expires_at__gt=now, created_at__lte=now)
        .order_by("account_id", "-created_at", "-id")
        .distinct("account_id")
        .values("account_id", "id", "band")
    )
    ctes = [
        f"inserted AS (INSERT INTO {HISTORY} (account_id, scorecard_id, score, computed_band, band,"
        " components, groups, missing, data_at, override_id, computed_at)"
        " SELECT f.account_id, f.scorecard_id, f.score, f.computed_band, COALESCE(o.band, f.computed_band),"
        " f.components, f.groups, f.missing, f.data_at, o.id, %s::timestamptz"
        f" FROM pg_temp.{SCORED} f"
        f" LEFT JOIN ({overrides_sql}) o ON o.account_id = f.account_id"
        " RETURNING account_id, score, band)",
        "moved AS (SELECT i.account_id, f.score_before, i.score, f.band_before, NULLIF(i.band, '') AS band"
        f" FROM inserted i JOIN pg_temp.{SCORED} f ON f.account_id = i.account_id"
        " WHERE (f.score_before, f.band_before) IS DISTINCT FROM (i.score, NULLIF(i.band, '')))",
        f"updated AS (UPDATE {ACCOUNTS} AS a SET health_score = m.score, health_band = m.band,"
        # Entered now when the band changes (none when unscored); kept otherwise.
        " health_band_since = CASE WHEN m.band IS NULL THEN NULL"
        " WHEN m.band IS DISTINCT FROM m.band_before OR a.health_band_since IS NULL THEN %s::timestamptz"
        " ELSE a.health_band_since END"
        " FROM moved m WHERE a.id = m.account_id)",
    ]
    return ctes, [now, *overrides_params, now]
