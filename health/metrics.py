"""The metric library: every metric one SQL query over all accounts, computable as of any time T.

A window of ``days`` as of T covers ``[T - days, T)``. Only what was known at T counts: events
that occurred before T, tickets opened before T and not closed by then, answers given before T,
touchpoints before T. Event windows read whole UTC days from the ``EventDaily`` rollup and the
partial days at either end of the window from the raw events, so any T gives the exact count.

A metric with no data for an account has no reading (the measure is then missing from the
score); a count over a window with nothing in it reads 0 (``Metric.empty``).
"""

import datetime as dt
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import (
    Avg,
    Count,
    DecimalField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, TruncDate
from django.db.models.lookups import Exact

from accounts.models import Account, AuditEntry, Event, EventDaily, SurveyResponse, Ticket, Touchpoint

DAY = dt.timedelta(days=1)
MAX_WINDOW_DAYS = 3650
RAW_PLACES = Decimal("0.0001")  # averages and ratios are stored to four decimal places


@dataclass(frozen=True)
class Reading:
    """One account's raw value of a metric, and when the newest input behind it was recorded."""

    value: Decimal
    data_at: dt.datetime | None


Readings = dict[int, Reading]
# A metric yields (account id, reading) in ascending account id, so that the recompute can merge
# every metric of an account without holding any of them whole in memory.
Stream = Iterable[tuple[int, Reading]]
STREAM_CHUNK = 5000


@dataclass(frozen=True)
class Relation:
    """A metric's readings as SQL (PostgreSQL), for the recompute that scores in SQL.

    ``source`` is a query with at most one row per account and a column ``account_id``; an
    account has a reading where ``where`` holds on its row, with the values ``value`` (numeric)
    and ``data_at``. In the three expressions ``{s}`` stands for the source's alias. Metrics with
    the same source (the event windows, the milestones) then share one pass over it. Rows are
    exactly the readings ``stream`` yields: the tests compare both on the same data.
    """

    source: str
    params: tuple
    value: str
    data_at: str
    where: str = "true"

    @classmethod
    def of(cls, rows: QuerySet, value: str, data_at: str, *, ordered: bool = False) -> "Relation":
        """A relation over an ORM query's rows (its ordering kept only where it matters: DISTINCT ON)."""
        sql, params = (rows if ordered else rows.order_by()).query.sql_with_params()
        return cls(sql, tuple(params), value, data_at)


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # "event" (an event name) or "days" (a window length)
    required: bool = True


@dataclass(frozen=True)
class Metric:
    key: str
    description: str
    params: tuple[Param, ...]
    compute: Callable[..., Stream]
    empty: Decimal | None = None  # the reading of an account with no rows (0 for counts)
    # The readings as SQL (a ``Relation``), PostgreSQL only; None: computed in Python.
    relation: Callable[..., Relation] | None = None


class MetricCache:
    """Results shared by metrics within one computation (milestone progress is read once)."""

    def __init__(self) -> None:
        self.values: dict[Any, Any] = {}

    def get(self, key: Any, compute: Callable[[], Any]) -> Any:
        """The value under ``key``, computed by ``compute()`` the first time it is asked for."""
        if key not in self.values:
            self.values[key] = compute()
        return self.values[key]


# --- windows over events --------------------------------------------------------------------


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def _split(
    start: dt.datetime, end: dt.datetime
) -> tuple[dt.date, dt.date, list[tuple[dt.datetime, dt.datetime]]]:
    """``[start, end)`` as whole UTC days ``[first_day, end_day)`` plus the partial days at its ends."""
    start, end = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
    first_day = start.date() if start == _midnight(start.date()) else start.date() + DAY
    end_day = end.date()
    if first_day >= end_day:
        return first_day, first_day, [(start, end)] if start < end else []
    parts = []
    if start < _midnight(first_day):
        parts.append((start, _midnight(first_day)))
    if _midnight(end_day) < end:
        parts.append((_midnight(end_day), end))
    return first_day, end_day, parts


def _stream(sql: str, params: list) -> Iterator[tuple]:
    """Rows of one query fetched in chunks from a server-side cursor, so memory stays flat."""
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(STREAM_CHUNK):
            yield from rows


def _scope_sql(accounts: QuerySet[Account] | None, *, as_array: bool = False) -> tuple[str, list]:
    """`` AND account_id IN (<the scope's ids>)`` with its params; nothing for no scope (None).

    A scope Django knows is empty selects nothing: ``pk__in=[]`` (an incremental run where
    nothing changed) compiles to no SQL at all (Django raises ``EmptyResultSet``, not ``IN ()``).
    ``as_array`` (PostgreSQL): the scope's ids are read first and given as one array, so that
    PostgreSQL reads each account's rows through its index; as a subquery it planned a hash join
    after reading the whole window (an incremental recompute of 12,000 accounts at 1M read 10M
    rollup rows for the windows: 8.8 s, against 1.0 s with the array).
    """
    if accounts is None:
        return "", []
    try:
        sql, params = _scope_ids(accounts).query.sql_with_params()
    except EmptyResultSet:
        return " AND false", []
    if as_array and connection.vendor == "postgresql":
        return " AND account_id = ANY(%s)", [list(_scope_ids(accounts).values_list("pk", flat=True))]
    return f" AND account_id IN ({sql})", list(params)


def _scoped(rows: QuerySet, accounts: QuerySet[Account] | None) -> QuerySet:
    """``rows`` of the accounts in scope; all of them for no scope (None: a relation of a full run)."""
    return rows if accounts is None else rows.filter(account_id__in=_scope_ids(accounts))


def _window_rows(
    name: str, start: dt.datetime, end: dt.datetime, scope: tuple[str, list]
) -> tuple[str, list]:
    """One account's events of ``name`` in ``[start, end)`` as rows ``(account_id, n, v, at, day)``.

    Whole UTC days come from the rollup (``at`` is the day's midnight: the rollup has no times),
    the partial days at either end from the raw events; ``day`` tells the UTC days apart (each
    partial part counts as one day, as it is one UTC day or less).
    """
    first_day, end_day, parts = _split(start, end)
    scope_sql, scope_params = scope
    branches, params = [], []
    if first_day < end_day:
        branches.append(
            f"SELECT account_id, count AS n, value_sum AS v, (day::timestamp AT TIME ZONE 'UTC') AS at, day"
            f" FROM {EventDaily._meta.db_table} WHERE name = %s AND day >= %s AND day < %s AND count > 0"
            f"{scope_sql}"
        )
        params += [name, first_day, end_day, *scope_params]
    for part_start, part_end in parts:
        branches.append(
            f"SELECT account_id, 1 AS n, value AS v, occurred_at AS at, %s::date AS day"
            f" FROM {Event._meta.db_table} WHERE name = %s AND occurred_at >= %s AND occurred_at < %s"
            f"{scope_sql}"
        )
        params += [part_start.date(), name, part_start, part_end, *scope_params]
    if not branches:  # an empty window
        return "SELECT NULL::bigint, 0, NULL::numeric, NULL::timestamptz, NULL::date WHERE false", []
    return " UNION ALL ".join(branches), params


def _portable() -> bool:
    """Not PostgreSQL: SQLite, the embedded default of ``make run``, where the streamed SQL's casts
    and ``DISTINCT ON`` do not exist. The ORM versions below give the same readings from the raw
    events (the demo prunes none, so the rollup adds nothing there)."""
    return connection.vendor != "postgresql"


# The ORM aggregate for each SQL aggregate of _window_metric, over the raw events.
_PORTABLE_AGGREGATES = {
    "SUM(n)": lambda: Count("id"),
    "COUNT(DISTINCT day)": lambda: Count(TruncDate("occurred_at", tzinfo=dt.UTC), distinct=True),
    "COALESCE(SUM(v), 0)": lambda: Coalesce(Sum("value"), Value(Decimal(0)), output_field=DecimalField()),
}


def _window_metric(
    accounts: QuerySet[Account], name: str, start: dt.datetime, end: dt.datetime, aggregate: str
) -> Iterator[tuple[int, Any, dt.datetime | None]]:
    """``(account_id, aggregate, newest input)`` per account with events in the window, by account."""
    if _portable():
        return _by_account(
            Event.objects.filter(
                account_id__in=_scope_ids(accounts), name=name, occurred_at__gte=start, occurred_at__lt=end
            )
            .values("account_id")
            .annotate(value=_PORTABLE_AGGREGATES[aggregate](), last=Max("occurred_at"))
            .values_list("account_id", "value", "last")
        )
    rows, params = _window_rows(name, start, end, _scope_sql(accounts))
    return _stream(
        f"SELECT account_id, {aggregate}, MAX(at) FROM ({rows}) w GROUP BY account_id ORDER BY account_id",
        params,
    )


def _days_between(earlier: dt.datetime, later: dt.datetime) -> Decimal:
    """Whole days elapsed (a day is 24 hours)."""
    return Decimal((later - earlier) // DAY)


def _quantized(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(RAW_PLACES, rounding=ROUND_HALF_UP)


def _scope_ids(accounts: QuerySet[Account]) -> QuerySet:
    return accounts.order_by().values("pk")


def _by_account(rows: QuerySet) -> Iterator[tuple]:
    """A per-account aggregate in account order, streamed."""
    return rows.order_by("account_id").iterator(chunk_size=STREAM_CHUNK)


# --- the metrics ------------------------------------------------------------------------------


def event_count(params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account], cache=None) -> Stream:
    rows = _window_metric(accounts, params["event"], as_of - params["days"] * DAY, as_of, "SUM(n)")
    return ((pk, Reading(Decimal(v), at)) for pk, v, at in rows if v)


def active_days(params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account], cache=None) -> Stream:
    rows = _window_metric(
        accounts, params["event"], as_of - params["days"] * DAY, as_of, "COUNT(DISTINCT day)"
    )
    return ((pk, Reading(Decimal(v), at)) for pk, v, at in rows if v)


def event_value_sum(params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account], cache=None) -> Stream:
    rows = _window_metric(
        accounts, params["event"], as_of - params["days"] * DAY, as_of, "COALESCE(SUM(v), 0)"
    )
    return ((pk, Reading(Decimal(v), at)) for pk, v, at in rows if v)


def usage_trend(params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account], cache=None) -> Stream:
    """This window's count ÷ the previous window's; no reading when the previous one was empty."""
    span = params["days"] * DAY
    if _portable():
        recent = Q(occurred_at__gte=as_of - span)
        rows = _by_account(
            Event.objects.filter(
                account_id__in=_scope_ids(accounts),
                name=params["event"],
                occurred_at__gte=as_of - 2 * span,
                occurred_at__lt=as_of,
            )
            .values("account_id")
            .annotate(
                n=Count("id", filter=recent),
                b=Count("id", filter=~recent),
                last=Max("occurred_at", filter=recent),
            )
            .values_list("account_id", "n", "b", "last")
        )
        return ((pk, Reading(_quantized(Decimal(n or 0) / Decimal(b)), at)) for pk, n, b, at in rows if b)
    scope = _scope_sql(accounts)
    now_rows, now_params = _window_rows(params["event"], as_of - span, as_of, scope)
    before_rows, before_params = _window_rows(params["event"], as_of - 2 * span, as_of - span, scope)
    rows = _stream(
        "SELECT account_id, SUM(n) FILTER (WHERE now), SUM(n) FILTER (WHERE NOT now),"
        " MAX(at) FILTER (WHERE now)"
        f" FROM (SELECT *, true AS now FROM ({now_rows}) n"
        f" UNION ALL SELECT *, false FROM ({before_rows}) b) w"
        " GROUP BY account_id ORDER BY account_id",
        now_params + before_params,
    )
    return ((pk, Reading(_quantized(Decimal(n or 0) / Decimal(b)), at)) for pk, n, b, at in rows if b)


def _last_events(params: dict, as_of: dt.datetime) -> QuerySet:
    return Event.objects.filter(account_id=OuterRef("pk"), name=params["event"], occurred_at__lt=as_of)


def days_since_last_event(
    params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account], cache=None
) -> Stream:
    return _newest_of_each(accounts, _last_events(params, as_of), as_of)


def days_since_last_event_relation(
    params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account] | None
) -> Relation:
    return _days_since_relation(accounts, _last_events(params, as_of), as_of)


def _contact_events(params: dict, as_of: dt.datetime, accounts: QuerySet[Account] | None) -> QuerySet:
    """The window's events that name a contact."""
    events = Event.objects.filter(
        occurred_at__gte=as_of - params["days"] * DAY,
        occurred_at__lt=as_of,
        contact_id__isnull=False,
    )
    events = _scoped(events, accounts)
    if params.get("event"):
        events = events.filter(name=params["event"])
    return events


def _active_contacts_rows(params: dict, as_of: dt.datetime, accounts: QuerySet[Account] | None) -> QuerySet:
    """``(account_id, n, last)`` of each account with a contact's event in the window."""
    return (
        _contact_events(params, as_of, accounts)
        .values("account_id")
        .annotate(n=Count("contact_id", distinct=True), last=Max("occurred_at"))
        .values_list("account_id", "n", "last")
    )


def active_contacts(params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account], cache=None) -> Stream:
    rows = _by_account(_active_contacts_rows(params, as_of, accounts))
    return ((pk, Reading(Decimal(n), last)) for pk, n, last in rows)


def active_contacts_relation(
    params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account] | None
) -> Relation:
    """The same rows in two hashed passes: each (account, contact) pair, then each account.

    ``COUNT(DISTINCT contact_id)`` sorts every event of the window by account (231 MB spilled to
    disk at 1M accounts); the pairs are a third of the events and need no sort.
    """
    if accounts is not None and connection.vendor == "postgresql":
        return _scoped_active_contacts_relation(params, as_of, accounts)
    events = _contact_events(params, as_of, accounts)
    pairs = events.values("account_id", "contact_id").annotate(pair_last=Max("occurred_at")).order_by()
    sql, pair_params = pairs.query.sql_with_params()
    per_account = (
        f"SELECT p.account_id, COUNT(*) AS n, MAX(p.pair_last) AS last FROM ({sql}) p GROUP BY p.account_id"
    )
    return Relation(per_account, tuple(pair_params), "{s}.n", "{s}.last")


def _scoped_active_contacts_relation(
    params: dict, as_of: dt.datetime, accounts: QuerySet[Account]
) -> Relation:
    """``active_contacts_relation`` for a scope (an incremental run): each account's window read
    through its own index range (``OFFSET 0`` keeps the lateral subquery a loop over the scope).

    Flattened, PostgreSQL scanned the whole window by time (6.5M events at 1M accounts for a
    scope of 12,000: 4.9 s) or merge-joined a sort of it to the scope; one index range per
    account read 12,000 accounts' windows in 0.4-1.0 s.
    """
    name = " AND name = %s" if params.get("event") else ""
    source = (
        "SELECT p.account_id, COUNT(*) AS n, MAX(p.pair_last) AS last FROM ("
        " SELECT s.id AS account_id, e.contact_id, MAX(e.occurred_at) AS pair_last"
        " FROM unnest(%s::bigint[]) s (id) JOIN LATERAL ("
        f"  SELECT contact_id, occurred_at FROM {Event._meta.db_table}"
        "   WHERE account_id = s.id AND occurred_at >= %s AND occurred_at < %s"
        f"   AND contact_id IS NOT NULL{name} OFFSET 0) e ON true"
        " GROUP BY s.id, e.contact_id) p GROUP BY p.account_id"
    )
    ids = list(accounts.order_by().values_list("pk", flat=True))
    source_params = (ids, as_of - params["days"] * DAY, as_of, *([params["event"]] if name else []))
    return Relation(source, source_params, "{s}.n", "{s}.last")


def _closed_by(as_of: dt.datetime) -> Q:
    # A ticket solved or closed without a closing time is taken as closed whatever T is.
    return Q(closed_at__lt=as_of) | Q(closed_at__isnull=True, status__in=["solved", "closed"])


URGENT = ["high", "urgent"]


def _ticket_rows(
    as_of: dt.datetime, accounts: QuerySet[Account] | None, priorities: list[str] | None
) -> QuerySet:
    """``(account_id, n open, newest opened, newest closed)`` of each account with a ticket by T."""
    tickets = _scoped(Ticket.objects.filter(opened_at__lt=as_of), accounts)
    still_open = ~_closed_by(as_of)
    if priorities:
        still_open &= Q(priority__in=priorities)
    return (
        tickets.values("account_id")
        .annotate(
            n=Count("id", filter=still_open),
            opened=Max("opened_at"),
            closed=Max("closed_at", filter=Q(closed_at__lt=as_of)),
        )
        .values_list("account_id", "n", "opened", "closed")
    )


def _open_tickets(as_of: dt.datetime, accounts: QuerySet[Account], priorities: list[str] | None) -> Stream:
    rows = _by_account(_ticket_rows(as_of, accounts, priorities))
    return ((pk, Reading(Decimal(n), max(c for c in (o, c) if c))) for pk, n, o, c in rows)


def _open_tickets_relation(
    as_of: dt.datetime, accounts: QuerySet[Account] | None, priorities: list[str] | None
) -> Relation:
    return Relation.of(_ticket_rows(as_of, accounts, priorities), "{s}.n", "GREATEST({s}.opened, {s}.closed)")


def open_tickets(params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account], cache=None) -> Stream:
    return _open_tickets(as_of, accounts, None)


def open_tickets_relation(
    params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account] | None
) -> Relation:
    return _open_tickets_relation(as_of, accounts, None)


def urgent_open_tickets(
    params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account], cache=None
) -> Stream:
    return _open_tickets(as_of, accounts, URGENT)


def urgent_open_tickets_relation(
    params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account] | None
) -> Relation:
    return _open_tickets_relation(as_of, accounts, URGENT)


def _tickets_opened_rows(params: dict, as_of: dt.datetime, accounts: QuerySet[Account] | None) -> QuerySet:
    tickets = Ticket.objects.filter(opened_at__gte=as_of - params["days"] * DAY, opened_at__lt=as_of)
    return (
        _scoped(tickets, accounts)
        .values("account_id")
        .annotate(n=Count("id"), last=Max("opened_at"))
        .values_list("account_id", "n", "last")
    )


def tickets_opened(params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account], cache=None) -> Stream:
    rows = _by_account(_tickets_opened_rows(params, as_of, accounts))
    return ((pk, Reading(Decimal(n), last)) for pk, n, last in rows)


def tickets_opened_relation(
    params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account] | None
) -> Relation:
    return Relation.of(_tickets_opened_rows(params, as_of, accounts), "{s}.n", "{s}.last")


def _nps_answers(as_of: dt.datetime, accounts: QuerySet[Account] | None) -> QuerySet:
    """Every NPS answer given before T, each account's newest first."""
    return (
        _scoped(SurveyResponse.objects.filter(kind="nps", responded_at__lt=as_of), accounts)
        .order_by("account_id", "-responded_at", "-id")
        .values_list("account_id", "score", "responded_at")
    )


def nps_latest_relation(params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account] | None) -> Relation:
    newest = _nps_answers(as_of, accounts).distinct("account_id")
    return Relation.of(newest, "{s}.score", "{s}.responded_at", ordered=True)


def nps_latest(params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account], cache=None) -> Stream:
    """The newest answer per account: one ``DISTINCT ON`` pass rather than a lookup per account."""
    answers = _nps_answers(as_of, accounts)
    if _portable():  # no DISTINCT ON: the first answer of each account in the same order
        return _newest_per_account(answers)
    rows = answers.distinct("account_id").iterator(chunk_size=STREAM_CHUNK)
    return ((pk, Reading(Decimal(score), at)) for pk, score, at in rows)


def _newest_per_account(answers: QuerySet) -> Iterator[tuple[int, Reading]]:
    """The first row of each account from rows ordered by account, newest first."""
    previous = None
    for pk, score, at in answers.iterator(chunk_size=STREAM_CHUNK):
        if pk != previous:
            previous = pk
            yield pk, Reading(Decimal(score), at)


def _survey_rows(kind: str, params: dict, as_of: dt.datetime, accounts: QuerySet[Account] | None) -> QuerySet:
    answers = SurveyResponse.objects.filter(
        kind=kind, responded_at__gte=as_of - params["days"] * DAY, responded_at__lt=as_of
    )
    return (
        _scoped(answers, accounts)
        .values("account_id")
        .annotate(avg=Avg("score"), last=Max("responded_at"))
        .values_list("account_id", "avg", "last")
    )


def _survey_average(kind: str, params: dict, as_of: dt.datetime, accounts: QuerySet[Account]) -> Stream:
    rows = _by_account(_survey_rows(kind, params, as_of, accounts))
    return ((pk, Reading(_quantized(avg), last)) for pk, avg, last in rows)


def _survey_average_relation(
    kind: str, params: dict, as_of: dt.datetime, accounts: QuerySet[Account] | None
) -> Relation:
    rows = _survey_rows(kind, params, as_of, accounts)
    return Relation.of(rows, "ROUND({s}.avg::numeric, 4)", "{s}.last")  # _quantized: 4 places, half up


def nps_average(params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account], cache=None) -> Stream:
    return _survey_average("nps", params, as_of, accounts)


def nps_average_relation(params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account] | None) -> Relation:
    return _survey_average_relation("nps", params, as_of, accounts)


def csat_average(params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account], cache=None) -> Stream:
    return _survey_average("csat", params, as_of, accounts)


def csat_average_relation(
    params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account] | None
) -> Relation:
    return _survey_average_relation("csat", params, as_of, accounts)


def _account_values(as_of: dt.datetime, cache: MetricCache | None) -> dict:
    from insights.clv import account_figures

    key = ("account_figures", as_of)
    return (cache or MetricCache()).get(key, lambda: account_figures(as_of=as_of))


def clv(params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account], cache=None) -> Stream:
    """Customer lifetime value as of T (insights.clv); no reading for an account that never bought."""
    scope = set(_scope_ids(accounts).values_list("pk", flat=True))
    figures = _account_values(as_of, cache)
    return (
        (pk, Reading(figures[pk].clv, figures[pk].history.last_at))
        for pk in sorted(figures)
        if pk in scope and figures[pk].clv is not None
    )


def rfm_score(params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account], cache=None) -> Stream:
    """R + F + M quintile scores (3 to 15) as of T; no reading without a purchase in the window."""
    scope = set(_scope_ids(accounts).values_list("pk", flat=True))
    figures = _account_values(as_of, cache)
    return (
        (pk, Reading(Decimal(f.window.r_score + f.window.f_score + f.window.m_score), f.history.last_at))
        for pk, f in ((pk, figures[pk]) for pk in sorted(figures))
        if pk in scope and f.window is not None
    )


def _milestones(as_of: dt.datetime, cache: MetricCache | None) -> dict:
    from journeys.progress import milestone_progress

    key = ("milestone_progress", as_of)
    return (cache or MetricCache()).get(key, lambda: milestone_progress(as_of=as_of))


def milestone_completion(
    params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account], cache=None
) -> Stream:
    """Percent of the current stage's milestones done; no reading without a stage or milestones."""
    progress = _milestones(as_of, cache)
    return (
        (pk, Reading(_quantized(p.completion), None))
        for pk, p in sorted(progress.items())
        if p.completion is not None
    )


def overdue_milestones(
    params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account], cache=None
) -> Stream:
    """Milestones of the current stage past due and not done; no reading for an account in no stage."""
    return ((pk, Reading(Decimal(p.overdue), None)) for pk, p in sorted(_milestones(as_of, cache).items()))


def _milestones_source(as_of: dt.datetime, accounts: QuerySet[Account] | None) -> tuple[str, tuple]:
    from journeys.progress import milestone_progress_query

    sql, params = milestone_progress_query(as_of=as_of, accounts=accounts)
    return f"SELECT * FROM ({sql}) m (account_id, completion, overdue)", tuple(params)


def milestone_completion_relation(
    params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account] | None
) -> Relation:
    source, source_params = _milestones_source(as_of, accounts)
    return Relation(
        source, source_params, "{s}.completion", "NULL::timestamptz", "{s}.completion IS NOT NULL"
    )


def overdue_milestones_relation(
    params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account] | None
) -> Relation:
    source, source_params = _milestones_source(as_of, accounts)
    return Relation(source, source_params, "{s}.overdue", "NULL::timestamptz")


def days_to_renewal(params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account], cache=None) -> Stream:
    """Days from T's UTC date to the renewal date known at T (negative once it has passed).

    The renewal date at T is today's unless the audit log shows a change after T: then it is the
    value that change replaced, so a backtest as of a past date does not see renewal dates the CRM
    rolled forward later (the future would leak into the score).
    """
    today = as_of.astimezone(dt.UTC).date()
    replaced = _renewal_dates_replaced_after(as_of)
    rows = accounts.order_by("pk").values_list("pk", "renewal_date").iterator(chunk_size=STREAM_CHUNK)
    return (
        (pk, Reading(Decimal((renewal - today).days), None))
        for pk, current in rows
        if (renewal := replaced.get(pk, current)) is not None
    )


def _renewal_dates_replaced_after(as_of: dt.datetime) -> dict[int, dt.date | None]:
    """Account id → the renewal date it had at ``as_of``, for accounts whose date changed since.

    One query over the renewal-date changes after T (rare rows: a few per account and year); the
    earliest change of each account holds, in its "before" value, the date valid at T.
    """
    changes = (
        AuditEntry.objects.filter(
            target_type=Account._meta.label_lower,
            action="account.changed",
            changes__has_key="renewal_date",
            at__gt=as_of,
        )
        .order_by("at", "id")
        .values_list("target_id", "changes")
    )
    before_at_t: dict[int, dt.date | None] = {}
    for target_id, change in changes:
        pair = change.get("renewal_date")
        if not target_id.isdigit() or not isinstance(pair, list) or len(pair) != 2:
            continue
        before_at_t.setdefault(int(target_id), _iso_date(pair[0]))
    return before_at_t


def _iso_date(value: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _touchpoints(as_of: dt.datetime) -> QuerySet:
    return Touchpoint.objects.filter(account_id=OuterRef("pk"), occurred_at__lt=as_of)


def days_since_touchpoint(
    params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account], cache=None
) -> Stream:
    return _newest_of_each(accounts, _touchpoints(as_of), as_of)


def days_since_touchpoint_relation(
    params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account] | None
) -> Relation:
    return _days_since_relation(accounts, _touchpoints(as_of), as_of)


def _newest_rows(accounts: QuerySet[Account] | None, rows: QuerySet) -> QuerySet:
    """``(pk, newest)``: each account's newest row of ``rows`` (correlated to the account).

    For each account, its newest row is one step down the (account, ..., time) index, so the
    accounts' whole histories are not read and grouped (a GROUP BY with MAX read every login of
    every account).
    """
    newest = Subquery(rows.order_by("-occurred_at").values("occurred_at")[:1])
    return (
        (Account.objects.all() if accounts is None else accounts)
        .annotate(newest=newest)
        .values_list("pk", "newest")
    )


def _newest_of_each(accounts: QuerySet[Account], rows: QuerySet, as_of: dt.datetime) -> Stream:
    """Days since each account's newest row of ``rows``, by account; none for accounts without one."""
    scoped = _newest_rows(accounts, rows).order_by("pk")
    return (
        (pk, Reading(_days_between(last, as_of), last))
        for pk, last in scoped.iterator(chunk_size=STREAM_CHUNK)
        if last is not None
    )


def _days_since_relation(accounts: QuerySet[Account] | None, rows: QuerySet, as_of: dt.datetime) -> Relation:
    """``_newest_of_each`` in SQL: whole days (of 24 hours) from the newest row to T."""
    sql, params = _newest_rows(accounts, rows).order_by().query.sql_with_params()
    return Relation(
        f"SELECT q.id AS account_id, q.newest, FLOOR(EXTRACT(EPOCH FROM %s::timestamptz - q.newest) / 86400)"
        f" AS days FROM ({sql} OFFSET 0) q (id, newest) WHERE q.newest IS NOT NULL",
        (as_of, *params),
        "{s}.days",
        "{s}.newest",
    )


EVENT = Param("event", "event")
OPTIONAL_EVENT = Param("event", "event", required=False)
DAYS = Param("days", "days")
ZERO = Decimal(0)

METRICS: dict[str, Metric] = {
    m.key: m
    for m in (
        Metric("event_count", "Events of a name in the last `days`.", (EVENT, DAYS), event_count, ZERO),
        Metric(
            "active_days", "UTC days with that event in the last `days`.", (EVENT, DAYS), active_days, ZERO
        ),
        Metric(
            "active_contacts",
            "Distinct contacts with events (of a name, if given) in the last `days`.",
            (OPTIONAL_EVENT, DAYS),
            active_contacts,
            ZERO,
            active_contacts_relation,
        ),
        Metric(
            "days_since_last_event",
            "Whole days since the last event of a name.",
            (EVENT,),
            days_since_last_event,
            relation=days_since_last_event_relation,
        ),
        Metric(
            "event_value_sum", "Sum of event values in the last `days`.", (EVENT, DAYS), event_value_sum, ZERO
        ),
        Metric(
            "usage_trend",
            "Events in the last `days` ÷ events in the `days` before (none if those were 0).",
            (EVENT, DAYS),
            usage_trend,
        ),
        Metric("open_tickets", "Tickets open at T.", (), open_tickets, ZERO, open_tickets_relation),
        Metric(
            "urgent_open_tickets",
            "High or urgent priority tickets open at T.",
            (),
            urgent_open_tickets,
            ZERO,
            urgent_open_tickets_relation,
        ),
        Metric(
            "tickets_opened",
            "Tickets opened in the last `days`.",
            (DAYS,),
            tickets_opened,
            ZERO,
            tickets_opened_relation,
        ),
        Metric("nps_latest", "The latest NPS answer (0-10).", (), nps_latest, relation=nps_latest_relation),
        Metric(
            "nps_average",
            "Average NPS answer in the last `days`.",
            (DAYS,),
            nps_average,
            relation=nps_average_relation,
        ),
        Metric(
            "csat_average",
            "Average CSAT answer (1-5) in the last `days`.",
            (DAYS,),
            csat_average,
            relation=csat_average_relation,
        ),
        Metric(
            "milestone_completion",
            "Percent of the current stage's milestones done.",
            (),
            milestone_completion,
            relation=milestone_completion_relation,
        ),
        Metric(
            "overdue_milestones",
            "Overdue milestones of the current stage.",
            (),
            overdue_milestones,
            relation=overdue_milestones_relation,
        ),
        # The renewal date known at T, CLV and RFM are computed in Python (the audit log's
        # changes, insights.clv): the recompute streams their readings into a temporary table.
        Metric("days_to_renewal", "Days until the renewal date.", (), days_to_renewal),
        Metric(
            "days_since_touchpoint",
            "Whole days since the last CSM touchpoint.",
            (),
            days_since_touchpoint,
            relation=days_since_touchpoint_relation,
        ),
        Metric("clv", "Customer lifetime value (insights: AOV x frequency x margin x lifetime).", (), clv),
        Metric("rfm_score", "RFM score: recency + frequency + monetary quintiles (3-15).", (), rfm_score),
    )
}


def validate_params(metric_key: str, params: Any) -> dict[str, str]:
    """Problems with a metric's parameters, by parameter name ("" for the whole object)."""
    metric = METRICS[metric_key]
    if not isinstance(params, dict):
        return {"": "must be a JSON object"}
    errors: dict[str, str] = {}
    known = {p.name: p for p in metric.params}
    for name in params:
        if name not in known:
            allowed = ", ".join(known) or "none"
            errors[name] = f"unknown parameter for {metric_key} (allowed: {allowed})"
    for param in metric.params:
        value = params.get(param.name)
        if value is None:
            if param.required:
                errors[param.name] = "this parameter is required"
            continue
        if param.kind == "event" and (not isinstance(value, str) or not 0 < len(value.strip()) <= 100):
            errors[param.name] = "must be an event name (1 to 100 characters)"
        if param.kind == "days" and (
            isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_WINDOW_DAYS
        ):
            errors[param.name] = f"must be a whole number of days from 1 to {MAX_WINDOW_DAYS}"
    return errors


def compute(
    metric_key: str,
    params: dict,
    *,
    as_of: dt.datetime,
    accounts: QuerySet[Account] | None = None,
    cache: MetricCache | None = None,
) -> Readings:
    """Readings of one metric for every account in ``accounts`` (default: all), as of ``as_of``."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    return dict(stream(metric_key, params, as_of=as_of, accounts=accounts, cache=cache))


def stream(
    metric_key: str,
    params: dict,
    *,
    as_of: dt.datetime,
    accounts: QuerySet[Account] | None = None,
    cache: MetricCache | None = None,
) -> Stream:
    """Like ``compute``, as ``(account id, reading)`` pairs in ascending account id, read lazily."""
    return streams([(metric_key, params)], as_of=as_of, accounts=accounts, cache=cache)[0]


# --- shared passes: the event-window metrics of one computation in one query -----------------

# The metrics read from whole days of the rollup plus the partial days of the raw events; on
# PostgreSQL, all of them in one computation are read by one query (see ``streams``).
WINDOW_METRICS = {"event_count", "active_days", "event_value_sum", "usage_trend"}


@dataclass(frozen=True)
class _Window:
    """One event window of a request: its name, bounds, and the SQL aggregate it reads."""

    name: str
    start: dt.datetime
    end: dt.datetime
    aggregate: str  # "SUM(n)", "COUNT(DISTINCT day)" or "SUM(v)"


def _windows_of(metric_key: str, params: dict, as_of: dt.datetime) -> list[_Window]:
    """The windows a window metric reads: one, or two for ``usage_trend`` (now, then before)."""
    span = params["days"] * DAY
    name = params["event"]
    if metric_key == "usage_trend":
        return [
            _Window(name, as_of - span, as_of, "SUM(n)"),
            _Window(name, as_of - 2 * span, as_of - span, "SUM(n)"),
        ]
    aggregate = {"event_count": "SUM(n)", "active_days": "COUNT(DISTINCT day)", "event_value_sum": "SUM(v)"}
    return [_Window(name, as_of - span, as_of, aggregate[metric_key])]


def _window_filter(window: _Window) -> tuple[str, list]:
    """The condition picking the rows of ``window`` among the shared rows.

    The same split as ``_window_rows``: whole days from the rollup, the partial days at either end
    from the raw events.
    """
    first_day, end_day, parts = _split(window.start, window.end)
    terms, params = [], [window.name]
    if first_day < end_day:
        terms.append("rollup AND day >= %s AND day < %s")
        params += [first_day, end_day]
    for part_start, part_end in parts:
        terms.append("NOT rollup AND at >= %s AND at < %s")
        params += [part_start, part_end]
    return f"name = %s AND ({' OR '.join(terms) or 'false'})", params


def _window_aggregate(window: _Window, flag: str) -> tuple[str, list]:
    """The aggregate of one window over the shared rows (``flag``: the column marking its rows).

    No ``COUNT(DISTINCT day)``, so the planner may hash the groups: a rollup row is one account's
    day of one name (unique), and each partial part counts as the one day it starts on when it
    holds an event, as in ``_window_rows``.
    """
    if window.aggregate == "SUM(v)":
        return f"COALESCE(SUM(v) FILTER (WHERE {flag}), 0)", []
    if window.aggregate == "SUM(n)":
        return f"SUM(n) FILTER (WHERE {flag})", []
    days, params = f"COUNT(*) FILTER (WHERE {flag} AND rollup)", []
    for part_start, part_end in _split(window.start, window.end)[2]:
        days += f" + COALESCE(MAX(1) FILTER (WHERE {flag} AND NOT rollup AND at >= %s AND at < %s), 0)"
        params += [part_start, part_end]
    return days, params


def _shared_window_rows(windows: list[_Window], scope: tuple[str, list]) -> tuple[str, list]:
    """Every row any of ``windows`` reads, once: rows ``(account_id, name, n, v, at, day, rollup)``.

    The rollup's whole days of all the windows' names over the span of their whole days, and the
    raw events of those names in any of their partial parts.
    """
    scope_sql, scope_params = scope
    names = sorted({w.name for w in windows})
    splits = [_split(w.start, w.end) for w in windows]
    whole = [(first, end) for first, end, _ in splits if first < end]
    parts = sorted({part for _, _, window_parts in splits for part in window_parts})
    branches, params = [], []
    if whole:
        branches.append(
            f"SELECT account_id, name, count AS n, value_sum AS v, (day::timestamp AT TIME ZONE 'UTC') AS at,"
            f" day, true AS rollup FROM {EventDaily._meta.db_table}"
            f" WHERE name = ANY(%s) AND day >= %s AND day < %s AND count > 0{scope_sql}"
        )
        params += [names, min(f for f, _ in whole), max(e for _, e in whole), *scope_params]
    if parts:
        ranges = " OR ".join(["occurred_at >= %s AND occurred_at < %s"] * len(parts))
        branches.append(
            "SELECT account_id, name, 1 AS n, value AS v, occurred_at AS at, NULL::date AS day,"
            f" false AS rollup FROM {Event._meta.db_table}"
            f" WHERE name = ANY(%s) AND ({ranges}){scope_sql}"
        )
        params += [names, *(bound for part in parts for bound in part), *scope_params]
    if not branches:
        return (
            "SELECT NULL::bigint AS account_id, NULL::varchar AS name, 0 AS n, NULL::numeric AS v,"
            " NULL::timestamptz AS at, NULL::date AS day, false AS rollup WHERE false",
            [],
        )
    return " UNION ALL ".join(branches), params


def _window_reading(metric_key: str, values: tuple) -> Reading | None:
    """One account's reading of a window metric from its columns (None: no reading)."""
    if metric_key == "usage_trend":
        n, b, at = values
        return Reading(_quantized(Decimal(n or 0) / Decimal(b)), at) if b else None
    value, at = values
    return Reading(Decimal(value), at) if value else None


class _Columns:
    """The select list of the shared query, each distinct expression once (metrics share them)."""

    def __init__(self) -> None:
        self.index: dict[tuple, int] = {}
        self.sql: list[str] = []
        self.params: list = []

    def add(self, sql: str, params: list) -> int:
        """The row position of ``sql`` (1 onwards: 0 is the account id), added if new."""
        key = (sql, tuple(params))
        if key not in self.index:
            self.index[key] = len(self.sql) + 1
            self.sql.append(sql)
            self.params += params
        return self.index[key]


def _shared_windows_query(
    requests: list[tuple[str, dict]],
    as_of: dt.datetime,
    accounts: QuerySet[Account] | None,
    *,
    scope_as_array: bool = False,
) -> tuple[str, list, list[tuple[int, ...]]]:
    """ONE pass over the rollup and the raw events for several window metrics: its SQL and params,
    and where each request's values are (column ``c<i>`` is at row position ``i``; 0 is the account).

    One GROUP BY account_id with an aggregate per window (``FILTER``), instead of a query per
    metric each reading the same rows again; each distinct window's condition is evaluated once
    per row (a flag column), and each distinct aggregate and newest time is selected once (the
    timestamps are the costliest values to load).
    """
    windows = [_windows_of(key, params, as_of) for key, params in requests]
    scope = _scope_sql(accounts, as_array=scope_as_array)
    rows_sql, rows_params = _shared_window_rows([w for ws in windows for w in ws], scope)
    flags, flag_sql, flag_params = {}, [], []
    for window in (w for ws in windows for w in ws):
        if (window.name, window.start, window.end) not in flags:
            flags[window.name, window.start, window.end] = flag = f"w{len(flags)}"
            condition, params = _window_filter(window)
            flag_sql.append(f"({condition}) AS {flag}")
            flag_params += params
    columns, positions = _Columns(), []
    for request_windows in windows:
        request_flags = [flags[w.name, w.start, w.end] for w in request_windows]
        values = [
            columns.add(*_window_aggregate(w, f)) for w, f in zip(request_windows, request_flags, strict=True)
        ]
        # data_at: the newest input of the (first, current) window only
        positions.append((*values, columns.add(f"MAX(at) FILTER (WHERE {request_flags[0]})", [])))
    select = ", ".join(f"{sql} AS c{i}" for i, sql in enumerate(columns.sql, start=1))
    return (
        f"SELECT account_id, {select}"
        f" FROM (SELECT account_id, n, v, at, rollup, {', '.join(flag_sql)} FROM ({rows_sql}) r) w"
        " GROUP BY account_id",
        columns.params + flag_params + rows_params,
        positions,
    )


def _shared_windows(
    requests: list[tuple[str, dict]], as_of: dt.datetime, accounts: QuerySet[Account]
) -> list[Stream]:
    """The streams of several window metrics from one query (``_shared_windows_query``).

    The rows are split back into one stream per metric (``tee``: the recompute consumes them in
    step, account by account, so little is buffered).
    """
    sql, params, positions = _shared_windows_query(requests, as_of, accounts)
    rows = _stream(f"{sql} ORDER BY account_id", params)
    branches = itertools.tee(rows, len(requests)) if requests else ()
    return [
        _split_stream(key, branch, at)
        for (key, _), branch, at in zip(requests, branches, positions, strict=True)
    ]


def _split_stream(metric_key: str, rows: Iterator[tuple], positions: tuple[int, ...]) -> Stream:
    """One metric's readings from the shared rows (its values are at ``positions``)."""
    for row in rows:
        reading = _window_reading(metric_key, tuple(row[i] for i in positions))
        if reading is not None:
            yield row[0], reading


def streams(
    requests: list[tuple[str, dict]],
    *,
    as_of: dt.datetime,
    accounts: QuerySet[Account] | None = None,
    cache: MetricCache | None = None,
) -> list[Stream]:
    """``stream`` of several ``(metric, params)`` at once, in order; metrics of a source share a pass.

    On PostgreSQL the event-window metrics (``WINDOW_METRICS``) are read by one query together;
    the others, and everything on SQLite, as ``stream`` reads them.
    """
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    scope = Account.objects.all() if accounts is None else accounts
    shared = [] if _portable() else [i for i, (key, _) in enumerate(requests) if key in WINDOW_METRICS]
    result: list[Stream | None] = [None] * len(requests)
    if shared:
        for i, window_stream in zip(
            shared, _shared_windows([requests[i] for i in shared], as_of, scope), strict=True
        ):
            result[i] = window_stream
    for i, (key, params) in enumerate(requests):
        if result[i] is None:
            result[i] = METRICS[key].compute(params, as_of=as_of, accounts=scope, cache=cache)
    return result


def _compilable(accounts: QuerySet[Account]) -> QuerySet[Account]:
    """The scope, or for one Django knows is empty (``pk__in=[]``, which compiles to no SQL at
    all) a scope that selects nothing in SQL, so that every relation's query can be written."""
    try:
        accounts.query.sql_with_params()
    except EmptyResultSet:
        return Account.objects.filter(Exact(Value(1), Value(0)))
    return accounts


def _window_relation(metric_key: str, positions: tuple[int, ...], source: str, params: tuple) -> Relation:
    """A window metric's readings from the shared windows' columns (``_window_reading`` in SQL)."""
    if metric_key == "usage_trend":
        now, before, at = (f"{{s}}.c{i}" for i in positions)
        # _quantized(n / b): four places, half up
        return Relation(
            source, params, f"ROUND(COALESCE({now}, 0)::numeric / {before}, 4)", at, f"{before} <> 0"
        )
    value, at = (f"{{s}}.c{i}" for i in positions)
    return Relation(source, params, f"{value}::numeric", at, f"{value} <> 0")


def relations(
    requests: list[tuple[str, dict]], *, as_of: dt.datetime, accounts: QuerySet[Account] | None = None
) -> list[Relation | None]:
    """Each ``(metric, params)``'s readings as a ``Relation`` (PostgreSQL); None where a metric has
    no SQL form. The event-window metrics share one source (``_shared_windows_query``).

    ``accounts`` None: the relations hold every account's readings, unfiltered, for a caller that
    joins them to its scope anyway (a full recompute: no semi-join of each source to the accounts).
    """
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    scope = _compilable(accounts) if accounts is not None else None  # None: every account, unfiltered
    shared = [i for i, (key, _) in enumerate(requests) if key in WINDOW_METRICS]
    result: list[Relation | None] = [None] * len(requests)
    if shared:
        sql, params, positions = _shared_windows_query(
            [requests[i] for i in shared],
            as_of,
            scope,
            scope_as_array=True,  # the recompute: one query more
        )
        for i, request_positions in zip(shared, positions, strict=True):
            result[i] = _window_relation(requests[i][0], request_positions, sql, tuple(params))
    for i, (key, params) in enumerate(requests):
        if result[i] is None and (relation := METRICS[key].relation) is not None:
            result[i] = relation(params, as_of=as_of, accounts=scope)
    return result
