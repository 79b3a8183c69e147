"""The metric library: every metric one SQL query over all accounts, computable as of any time T.

A window of ``days`` as of T covers ``[T - days, T)``. Only what was known at T counts: events
that occurred before T, tickets opened before T and not closed by then, answers given before T,
touchpoints before T. Event windows read whole UTC days from the ``EventDaily`` rollup and the
partial days at either end of the window from the raw events, so any T gives the exact count.

A metric with no data for an account has no reading (the measure is then missing from the
score); a count over a window with nothing in it reads 0 (``Metric.empty``).
"""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import (
    Avg,
    Case,
    Count,
    DateField,
    DateTimeField,
    DecimalField,
    Exists,
    Expression,
    IntegerField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce

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
    compute: Callable[..., Readings]
    empty: Decimal | None = None  # the reading of an account with no rows (0 for counts)


class MetricCache:
    """Results shared by metrics within one computation (milestone progress is read once)."""

    def __init__(self) -> None:
        self.values: dict[Any, Any] = {}


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


def _rollup_rows(name: str, first_day: dt.date, end_day: dt.date) -> QuerySet:
    return (
        EventDaily.objects.filter(
            account_id=OuterRef("pk"), name=name, day__gte=first_day, day__lt=end_day, count__gt=0
        )
        .order_by()
        .values("account_id")
    )


def _raw_rows(name: str, parts: list[tuple[dt.datetime, dt.datetime]]) -> QuerySet:
    within = Q()
    for start, end in parts:
        within |= Q(occurred_at__gte=start, occurred_at__lt=end)
    return Event.objects.filter(within, account_id=OuterRef("pk"), name=name).order_by().values("account_id")


def _scalar(rows: QuerySet, aggregate: Expression, output_field) -> Subquery:
    return Subquery(rows.annotate(result=aggregate).values("result"), output_field=output_field)


@dataclass(frozen=True)
class _Window:
    """SQL expressions over one account's events of one name in ``[start, end)``."""

    name: str
    start: dt.datetime
    end: dt.datetime

    def _parts(self):
        return _split(self.start, self.end)

    def total(self, *, of_value: bool = False) -> Expression:
        """The number of events (or the sum of their values) in the window."""
        first_day, end_day, parts = self._parts()
        field = DecimalField(max_digits=20, decimal_places=2) if of_value else IntegerField()
        zero = Value(Decimal(0) if of_value else 0, output_field=field)
        total: Expression = zero
        if first_day < end_day:
            rollup = Sum("value_sum") if of_value else Sum("count")
            total = Coalesce(_scalar(_rollup_rows(self.name, first_day, end_day), rollup, field), zero)
        if parts:
            raw = Sum("value") if of_value else Count("id")
            total = total + Coalesce(_scalar(_raw_rows(self.name, parts), raw, field), zero)
        return total

    def active_days(self) -> Expression:
        """Distinct UTC days with at least one event in the window."""
        first_day, end_day, parts = self._parts()
        days: Expression = Value(0)
        if first_day < end_day:
            days = Coalesce(
                _scalar(_rollup_rows(self.name, first_day, end_day), Count("id"), IntegerField()), Value(0)
            )
        for part in parts:  # each partial day is a different UTC day
            rows = _raw_rows(self.name, [part])
            days = days + Case(When(Exists(rows), then=Value(1)), default=Value(0))
        return days

    def latest(self) -> tuple[Expression, Expression]:
        """The newest full day in the rollup and the newest raw event at the window's ends."""
        first_day, end_day, parts = self._parts()
        day = (
            _scalar(_rollup_rows(self.name, first_day, end_day), Max("day"), None)
            if first_day < end_day
            else Value(None, output_field=DateField())
        )
        moment = (
            _scalar(_raw_rows(self.name, parts), Max("occurred_at"), None)
            if parts
            else Value(None, output_field=DateTimeField())
        )
        return day, moment


def _data_at(day: dt.date | None, moment: dt.datetime | None) -> dt.datetime | None:
    """The newer of a rollup day (taken at its start: the rollup has no times) and a raw moment."""
    candidates = [c for c in (moment, _midnight(day) if day else None) if c is not None]
    return max(candidates) if candidates else None


def _window_metric(
    accounts: QuerySet[Account], window: _Window, value: Expression
) -> list[tuple[int, Any, dt.datetime | None]]:
    day, moment = window.latest()
    rows = accounts.order_by().annotate(v=value, d=day, m=moment).values_list("pk", "v", "d", "m")
    return [(pk, v, _data_at(d, m)) for pk, v, d, m in rows]


def _days_between(earlier: dt.datetime, later: dt.datetime) -> Decimal:
    """Whole days elapsed (a day is 24 hours)."""
    return Decimal((later - earlier) // DAY)


def _quantized(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(RAW_PLACES, rounding=ROUND_HALF_UP)


def _scope_ids(accounts: QuerySet[Account]) -> QuerySet:
    return accounts.order_by().values("pk")


# --- the metrics ------------------------------------------------------------------------------


def event_count(params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account], cache=None) -> Readings:
    window = _Window(params["event"], as_of - params["days"] * DAY, as_of)
    rows = _window_metric(accounts, window, window.total())
    return {pk: Reading(Decimal(v), at) for pk, v, at in rows if v}


def active_days(params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account], cache=None) -> Readings:
    window = _Window(params["event"], as_of - params["days"] * DAY, as_of)
    rows = _window_metric(accounts, window, window.active_days())
    return {pk: Reading(Decimal(v), at) for pk, v, at in rows if v}


def event_value_sum(params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account], cache=None) -> Readings:
    window = _Window(params["event"], as_of - params["days"] * DAY, as_of)
    rows = _window_metric(accounts, window, window.total(of_value=True))
    return {pk: Reading(Decimal(v), at) for pk, v, at in rows if v}


def usage_trend(params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account], cache=None) -> Readings:
    """This window's count ÷ the previous window's; no reading when the previous one was empty."""
    span = params["days"] * DAY
    now = _Window(params["event"], as_of - span, as_of)
    before = _Window(params["event"], as_of - 2 * span, as_of - span)
    day, moment = now.latest()
    rows = (
        accounts.order_by()
        .annotate(n=now.total(), b=before.total(), d=day, m=moment)
        .values_list("pk", "n", "b", "d", "m")
    )
    return {pk: Reading(_quantized(Decimal(n) / Decimal(b)), _data_at(d, m)) for pk, n, b, d, m in rows if b}


def days_since_last_event(
    params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account], cache=None
) -> Readings:
    last = Subquery(
        Event.objects.filter(account_id=OuterRef("pk"), name=params["event"], occurred_at__lt=as_of)
        .order_by("-occurred_at")
        .values("occurred_at")[:1]
    )
    rows = accounts.order_by().annotate(last=last).filter(last__isnull=False).values_list("pk", "last")
    return {pk: Reading(_days_between(last, as_of), last) for pk, last in rows}


def active_contacts(params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account], cache=None) -> Readings:
    events = Event.objects.filter(
        account_id__in=_scope_ids(accounts),
        occurred_at__gte=as_of - params["days"] * DAY,
        occurred_at__lt=as_of,
        contact_id__isnull=False,
    )
    if params.get("event"):
        events = events.filter(name=params["event"])
    rows = (
        events.order_by()
        .values("account_id")
        .annotate(n=Count("contact_id", distinct=True), last=Max("occurred_at"))
        .values_list("account_id", "n", "last")
    )
    return {pk: Reading(Decimal(n), last) for pk, n, last in rows}


def _closed_by(as_of: dt.datetime) -> Q:
    # A ticket solved or closed without a closing time is taken as closed whatever T is.
    return Q(closed_at__lt=as_of) | Q(closed_at__isnull=True, status__in=["solved", "closed"])


def _open_tickets(as_of: dt.datetime, accounts: QuerySet[Account], priorities: list[str] | None) -> Readings:
    tickets = Ticket.objects.filter(account_id__in=_scope_ids(accounts), opened_at__lt=as_of)
    still_open = ~_closed_by(as_of)
    if priorities:
        still_open &= Q(priority__in=priorities)
    rows = (
        tickets.order_by()
        .values("account_id")
        .annotate(
            n=Count("id", filter=still_open),
            opened=Max("opened_at"),
            closed=Max("closed_at", filter=Q(closed_at__lt=as_of)),
        )
        .values_list("account_id", "n", "opened", "closed")
    )
    return {pk: Reading(Decimal(n), max(c for c in (o, c) if c)) for pk, n, o, c in rows}


def open_tickets(params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account], cache=None) -> Readings:
    return _open_tickets(as_of, accounts, None)


def urgent_open_tickets(
    params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account], cache=None
) -> Readings:
    return _open_tickets(as_of, accounts, ["high", "urgent"])


def tickets_opened(params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account], cache=None) -> Readings:
    rows = (
        Ticket.objects.filter(
            account_id__in=_scope_ids(accounts),
            opened_at__gte=as_of - params["days"] * DAY,
            opened_at__lt=as_of,
        )
        .order_by()
        .values("account_id")
        .annotate(n=Count("id"), last=Max("opened_at"))
        .values_list("account_id", "n", "last")
    )
    return {pk: Reading(Decimal(n), last) for pk, n, last in rows}


def nps_latest(params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account], cache=None) -> Readings:
    latest = SurveyResponse.objects.filter(
        account_id=OuterRef("pk"), kind="nps", responded_at__lt=as_of
    ).order_by("-responded_at", "-id")
    rows = (
        accounts.order_by()
        .annotate(score=Subquery(latest.values("score")[:1]), at=Subquery(latest.values("responded_at")[:1]))
        .filter(at__isnull=False)
        .values_list("pk", "score", "at")
    )
    return {pk: Reading(Decimal(score), at) for pk, score, at in rows}


def _survey_average(kind: str, params: dict, as_of: dt.datetime, accounts: QuerySet[Account]) -> Readings:
    rows = (
        SurveyResponse.objects.filter(
            account_id__in=_scope_ids(accounts),
            kind=kind,
            responded_at__gte=as_of - params["days"] * DAY,
            responded_at__lt=as_of,
        )
        .order_by()
        .values("account_id")
        .annotate(avg=Avg("score"), last=Max("responded_at"))
        .values_list("account_id", "avg", "last")
    )
    return {pk: Reading(_quantized(avg), last) for pk, avg, last in rows}


def nps_average(params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account], cache=None) -> Readings:
    return _survey_average("nps", params, as_of, accounts)


def csat_average(params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account], cache=None) -> Readings:
    return _survey_average("csat", params, as_of, accounts)


def _account_values(as_of: dt.datetime, cache: MetricCache | None) -> dict:
    from insights.clv import account_figures

    key = ("account_figures", as_of)
    if cache is None:
        return account_figures(as_of=as_of)
    if key not in cache.values:
        cache.values[key] = account_figures(as_of=as_of)
    return cache.values[key]


def clv(params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account], cache=None) -> Readings:
    """Customer lifetime value as of T (insights.clv); no reading for an account that never bought."""
    scope = set(_scope_ids(accounts).values_list("pk", flat=True))
    return {
        pk: Reading(f.clv, f.history.last_at)
        for pk, f in _account_values(as_of, cache).items()
        if pk in scope and f.clv is not None
    }


def rfm_score(params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account], cache=None) -> Readings:
    """R + F + M quintile scores (3 to 15) as of T; no reading without a purchase in the window."""
    scope = set(_scope_ids(accounts).values_list("pk", flat=True))
    return {
        pk: Reading(Decimal(f.window.r_score + f.window.f_score + f.window.m_score), f.history.last_at)
        for pk, f in _account_values(as_of, cache).items()
        if pk in scope and f.window is not None
    }


def _milestones(as_of: dt.datetime, cache: MetricCache | None) -> dict:
    from journeys.progress import milestone_progress

    key = ("milestone_progress", as_of)
    if cache is None:
        return milestone_progress(as_of=as_of)
    if key not in cache.values:
        cache.values[key] = milestone_progress(as_of=as_of)
    return cache.values[key]


def milestone_completion(
    params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account], cache=None
) -> Readings:
    """Percent of the current stage's milestones done; no reading without a stage or milestones."""
    progress = _milestones(as_of, cache)
    return {
        pk: Reading(_quantized(p.completion), None) for pk, p in progress.items() if p.completion is not None
    }


def overdue_milestones(
    params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account], cache=None
) -> Readings:
    """Milestones of the current stage past due and not done; no reading for an account in no stage."""
    return {pk: Reading(Decimal(p.overdue), None) for pk, p in _milestones(as_of, cache).items()}


def days_to_renewal(params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account], cache=None) -> Readings:
    """Days from T's UTC date to the renewal date known at T (negative once it has passed).

    The renewal date at T is today's unless the audit log shows a change after T: then it is the
    value that change replaced, so a backtest as of a past date does not see renewal dates the CRM
    rolled forward later (the future would leak into the score).
    """
    today = as_of.astimezone(dt.UTC).date()
    rows = dict(accounts.order_by().values_list("pk", "renewal_date"))
    for pk, renewal_at_t in _renewal_dates_replaced_after(as_of).items():
        if pk in rows:
            rows[pk] = renewal_at_t
    return {pk: Reading(Decimal((renewal - today).days), None) for pk, renewal in rows.items() if renewal}


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


def days_since_touchpoint(
    params: dict, *, as_of: dt.datetime, accounts: QuerySet[Account], cache=None
) -> Readings:
    rows = (
        Touchpoint.objects.filter(account_id__in=_scope_ids(accounts), occurred_at__lt=as_of)
        .order_by()
        .values("account_id")
        .annotate(last=Max("occurred_at"))
        .values_list("account_id", "last")
    )
    return {pk: Reading(_days_between(last, as_of), last) for pk, last in rows}


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
        ),
        Metric(
            "days_since_last_event",
            "Whole days since the last event of a name.",
            (EVENT,),
            days_since_last_event,
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
        Metric("open_tickets", "Tickets open at T.", (), open_tickets, ZERO),
        Metric(
            "urgent_open_tickets", "High or urgent priority tickets open at T.", (), urgent_open_tickets, ZERO
        ),
        Metric("tickets_opened", "Tickets opened in the last `days`.", (DAYS,), tickets_opened, ZERO),
        Metric("nps_latest", "The latest NPS answer (0-10).", (), nps_latest),
        Metric("nps_average", "Average NPS answer in the last `days`.", (DAYS,), nps_average),
        Metric("csat_average", "Average CSAT answer (1-5) in the last `days`.", (DAYS,), csat_average),
        Metric(
            "milestone_completion",
            "Percent of the current stage's milestones done.",
            (),
            milestone_completion,
        ),
        Metric("overdue_milestones", "Overdue milestones of the current stage.", (), overdue_milestones),
        Metric("days_to_renewal", "Days until the renewal date.", (), days_to_renewal),
        Metric(
            "days_since_touchpoint", "Whole days since the last CSM touchpoint.", (), days_since_touchpoint
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
    scope = Account.objects.all() if accounts is None else accounts
    return METRICS[metric_key].compute(params, as_of=as_of, accounts=scope, cache=cache)
