"""Triggers: which accounts a playbook's condition holds for now, and for which occurrence.

Each trigger is one set-based query over the database (not over in-memory changes, so nothing is
lost if a step dies between two others). It returns a ``Firing`` per account where the condition
holds, keyed by the occurrence (the band entry, the stage visit, the survey answer, the review
period…): the actions step fires once per key, and the set of accounts tells which open tasks
can be closed when the condition clears.
"""

import datetime as dt
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import (
    CharField,
    Exists,
    Expression,
    ExpressionWrapper,
    F,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Cast, Coalesce, Concat, TruncDate

from accounts.lookups import any_of
from accounts.models import Account, EventDaily, SurveyResponse
from insights.models import AccountValue, PlaybookValueFilter, RfmSegment
from playbooks.models import Playbook, PlaybookRun, Task, Trigger


class TriggerConfigError(ValueError):
    """A playbook's trigger parameters are missing or wrong."""


@dataclass(frozen=True)
class Firing:
    account_id: int
    key: str
    context: dict[str, Any] = field(default_factory=dict)


# What each trigger takes: name → (type, required). Checked when a playbook is saved.
TRIGGER_PARAMS: dict[str, dict[str, tuple[type, bool]]] = {
    Trigger.BAND_ENTERED: {"band": (str, True)},
    Trigger.SCORE_DROPPED: {"points": (float, True), "days": (int, True)},
    Trigger.STAGE_ENTERED: {"stage": (str, True)},
    Trigger.MILESTONE_OVERDUE: {"milestone": (str, False)},
    Trigger.RENEWAL_WITHIN: {"days": (int, True)},
    Trigger.NPS_DETRACTOR: {"max_score": (int, False), "within_days": (int, False)},
    Trigger.INACTIVITY: {"days": (int, True), "event": (str, False)},
    Trigger.RECURRING_REVIEW: {"days": (int, True)},
    Trigger.TASK_OVERDUE: {"days": (int, False)},
    Trigger.EXPANSION_SIGNAL: {"days": (int, False), "percent": (float, False), "event": (str, False)},
    Trigger.SEGMENT_ENTERED: {"segment": (str, True)},
    Trigger.NO_SURVEY_IN: {"days": (int, True)},
}


def trigger_param_errors(trigger: str, params: Any) -> list[str]:
    """What is wrong with a trigger's parameters, as sentences (empty when they are fine)."""
    if trigger not in TRIGGER_PARAMS:
        return [f"unknown trigger {trigger!r}"]
    if not isinstance(params, dict):
        return ["must be a JSON object"]
    spec = TRIGGER_PARAMS[trigger]
    errors = [f"unknown parameter {name!r} for {trigger}" for name in params if name not in spec]
    for name, (kind, required) in spec.items():
        value = params.get(name)
        if value is None:
            if required:
                errors.append(f"{name!r} is required for {trigger}")
            continue
        if kind is str:
            if not isinstance(value, str) or not value.strip():
                errors.append(f"{name!r} must be a non-empty string")
            elif name == "band" and value not in Account.Band.values:
                errors.append(f"'band' must be one of {', '.join(Account.Band.values)}")
            elif name == "segment" and value not in RfmSegment.values:
                errors.append(f"'segment' must be one of {', '.join(RfmSegment.values)}")
        elif (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or (kind is int and value != int(value))
        ):
            errors.append(f"{name!r} must be a {'whole ' if kind is int else ''}number")
        else:
            minimum = 0 if name == "max_score" or trigger == Trigger.TASK_OVERDUE else 1
            if value < minimum:
                errors.append(f"{name!r} must be at least {minimum}")
    return errors


def eligible_accounts(playbook: Playbook, scope: Collection[int] | None = None) -> QuerySet[Account]:
    """Active accounts passing the playbook's filters (segment, minimum ARR, stage, band, minimum CLV).

    ``scope``: only these accounts (an incremental run: those that changed); None: every account.
    """
    accounts = Account.objects.filter(status=Account.Status.ACTIVE)
    if scope is not None:
        accounts = accounts.filter(any_of("pk", sorted(scope)))
    if playbook.segments:
        accounts = accounts.filter(segment__in=playbook.segments)
    if playbook.min_arr is not None:
        accounts = accounts.filter(arr__gte=playbook.min_arr)
    if playbook.stages:
        accounts = accounts.filter(stage__in=playbook.stages)
    if playbook.bands:
        accounts = accounts.filter(health_band__in=playbook.bands)
    value_filter = PlaybookValueFilter.objects.filter(playbook=playbook).first()
    if value_filter is not None:
        # The latest stored CLV (insights step); accounts without one do not pass.
        accounts = accounts.filter(value__clv__gte=value_filter.min_clv)
    return accounts


def _param(playbook: Playbook, name: str, kind: type = int, default: Any = None) -> Any:
    value = (playbook.trigger_params or {}).get(name, default)
    if value is None:
        raise TriggerConfigError(f"trigger parameter {name!r} is required for {playbook.trigger}")
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise TriggerConfigError(f"trigger parameter {name!r} must be a {kind.__name__}") from None


def _today(now: dt.datetime) -> dt.date:
    return now.astimezone(dt.UTC).date()


class DaysBetween(Func):
    """Whole days from the date ``start`` to the date ``end`` (``end - start``), as an integer.

    PostgreSQL subtracts dates to an integer; SQLite (``make run``) through ``julianday``.
    """

    output_field = IntegerField()
    arity = 2

    def __init__(self, end: Any, start: Any) -> None:
        super().__init__(end, start)

    def as_sql(self, compiler, connection, **extra):  # type: ignore[override]
        return super().as_sql(
            compiler, connection, template="((%(expressions)s)::date)", arg_joiner=")::date - ("
        )

    def as_sqlite(self, compiler, connection, **extra):  # type: ignore[override]
        return super().as_sql(
            compiler,
            connection,
            template="CAST(julianday(%(expressions)s) AS integer)",
            arg_joiner=") - julianday(",
        )


def _days(expression: Any, days: int) -> ExpressionWrapper:
    """How many whole periods of ``days`` an integer number of days holds (both never negative)."""
    return ExpressionWrapper(expression / Value(days), output_field=IntegerField())


def _text(expression: Any) -> Cast:
    return Cast(expression, CharField())


def _utc_date(expression: Any) -> TruncDate:
    return TruncDate(expression, tzinfo=dt.UTC)


def _unfired(playbook: Playbook, rows: QuerySet[Account], key: Expression) -> QuerySet[Account]:
    """``rows`` without the accounts where ``playbook`` already fired for the occurrence ``key``.

    ``key`` is the trigger's key as an SQL expression over the account's row, so the occurrences
    fired on earlier days (most of a daily run's firings) never leave the database. Only for
    triggers with at most one firing per account: the cooldown then keeps the same firings.
    """
    fired = PlaybookRun.objects.filter(
        playbook=playbook, account=OuterRef("pk"), trigger_key=OuterRef("occurrence")
    )
    return rows.alias(occurrence=key).exclude(Exists(fired))


# --- triggers over accounts, events, surveys and tasks ------------------------------------


def renewal_within(
    playbook: Playbook, accounts: QuerySet[Account], now: dt.datetime, *, only_new: bool = False
) -> list[Firing]:
    """Renewal date within N days (once per renewal date)."""
    days = _param(playbook, "days")
    today = _today(now)
    rows = accounts.filter(renewal_date__gte=today, renewal_date__lte=today + dt.timedelta(days=days))
    if only_new:
        rows = _unfired(playbook, rows, Concat(Value(f"renewal:{days}:"), _text("renewal_date")))
    return [
        Firing(
            pk,
            f"renewal:{days}:{renewal}",
            {"renewal_date": renewal.isoformat(), "days_to_renewal": (renewal - today).days},
        )
        for pk, renewal in rows.values_list("pk", "renewal_date")
    ]


def nps_detractor(playbook: Playbook, accounts: QuerySet[Account], now: dt.datetime) -> list[Firing]:
    """An NPS answer of at most ``max_score`` (default 6), once per answer."""
    max_score = _param(playbook, "max_score", default=6)
    lookback = now - dt.timedelta(days=_param(playbook, "within_days", default=30))
    answers = SurveyResponse.objects.filter(
        account__in=accounts,
        kind=SurveyResponse.Kind.NPS,
        score__lte=max_score,
        responded_at__gte=max(lookback, playbook.active_since),
        responded_at__lt=now,
    )
    return [
        Firing(account_id, f"survey:{pk}", {"score": score, "comment": comment[:300]})
        for pk, account_id, score, comment in answers.values_list("pk", "account_id", "score", "comment")
    ]


def inactivity(
    playbook: Playbook, accounts: QuerySet[Account], now: dt.datetime, *, only_new: bool = False
) -> list[Firing]:
    """No ``event`` (any event if unset) for N days; once per quiet spell (its last active day)."""
    days = _param(playbook, "days")
    event = (playbook.trigger_params or {}).get("event") or None
    today = _today(now)
    quiet_since = today - dt.timedelta(days=days)
    rollup = EventDaily.objects.filter(account=OuterRef("pk"), day__lt=today)
    if event:
        rollup = rollup.filter(name=event)
    last_day = Subquery(rollup.order_by("-day").values("day")[:1])
    # Quiet: no active day in ``[quiet_since, today)``; the last active day is then looked up for
    # the quiet accounts only. At 1M accounts PostgreSQL runs the ``NOT EXISTS`` as a parallel
    # anti-join of index-only probes: 6.3 to 6.4 s against 8.4 to 20.7 s (warm, cold) for the last day
    # of every account compared with ``quiet_since``, with the same 253,706 firings.
    rows = (
        accounts.filter(~Exists(rollup.filter(day__gte=quiet_since)))
        # Accounts too young to have been quiet that long are left alone.
        .filter(Q(contract_start__isnull=True) | Q(contract_start__lte=quiet_since))
        .annotate(last_active=last_day)
    )
    if only_new:
        key = Concat(Value(f"inactive:{event or '*'}:"), Coalesce(_text("last_active"), Value("never")))
        rows = _unfired(playbook, rows, key)
    rows = rows.values_list("pk", "last_active")
    return [
        Firing(
            pk,
            f"inactive:{event or '*'}:{last.isoformat() if last else 'never'}",
            {"event": event, "last_active": last.isoformat() if last else None, "days": days},
        )
        for pk, last in rows
    ]


def recurring_review(
    playbook: Playbook, accounts: QuerySet[Account], now: dt.datetime, *, only_new: bool = False
) -> list[Firing]:
    """Every N days from the contract start (or creation); once per period.

    Only periods that began after the playbook became active fire, so turning it on schedules
    each account's review at its next anniversary rather than all of them today.
    """
    days = _param(playbook, "days")
    today = _today(now)
    anchor = Coalesce("contract_start", _utc_date("created_at"))
    elapsed = DaysBetween(Value(today), anchor)
    rows = (
        accounts.annotate(period=_days(elapsed, days))
        .alias(period_start=ExpressionWrapper(F("period") * Value(days), output_field=IntegerField()))
        # At least one whole period, and the current one began on or after the activation day
        # (both in days from the anchor).
        .filter(period__gte=1, period_start__gte=DaysBetween(Value(_today(playbook.active_since)), anchor))
    )
    if only_new:
        rows = _unfired(playbook, rows, Concat(Value(f"review:{days}:"), _text("period")))
    return [
        Firing(pk, f"review:{days}:{period}", {"period": period, "every_days": days})
        for pk, period in rows.values_list("pk", "period")
    ]


def task_overdue(playbook: Playbook, accounts: QuerySet[Account], now: dt.datetime) -> list[Firing]:
    """An open task past its due date by more than ``days`` (default 0); once per task."""
    grace = _param(playbook, "days", default=0)
    overdue = Task.objects.filter(
        account__in=accounts,
        status=Task.Status.OPEN,
        due_date__lt=_today(now) - dt.timedelta(days=grace),
    ).exclude(playbook=playbook)
    return [
        Firing(account_id, f"task:{pk}", {"task": title, "due_date": due.isoformat()})
        for pk, account_id, title, due in overdue.values_list("pk", "account_id", "title", "due_date")
    ]


def _events_counted(condition: Q) -> Sum:
    return Sum("event_days__count", filter=condition)


def expansion_signal(
    playbook: Playbook, accounts: QuerySet[Account], now: dt.datetime, *, only_new: bool = False
) -> list[Firing]:
    """Green band and ``event`` usage up by ``percent`` over ``days`` vs the ``days`` before."""
    days = _param(playbook, "days", default=30)
    percent = _param(playbook, "percent", float, default=25)
    event = (playbook.trigger_params or {}).get("event") or None
    today = _today(now)
    start, middle = today - dt.timedelta(days=2 * days), today - dt.timedelta(days=days)
    in_event = Q(event_days__name=event) if event else Q()
    period = today.toordinal() // days
    green = accounts.filter(health_band=Account.Band.GREEN)
    if only_new:  # one key per period for every account: leave out those fired in this one first
        green = _unfired(playbook, green, Value(f"expansion:{days}:{period}"))
    rows = (
        green.annotate(
            now_count=Coalesce(
                _events_counted(in_event & Q(event_days__day__gte=middle, event_days__day__lt=today)),
                Value(0),
                output_field=IntegerField(),
            ),
            before_count=Coalesce(
                _events_counted(in_event & Q(event_days__day__gte=start, event_days__day__lt=middle)),
                Value(0),
                output_field=IntegerField(),
            ),
        )
        .filter(before_count__gt=0, now_count__gte=F("before_count") * (1 + percent / 100))
        .values_list("pk", "now_count", "before_count")
    )
    return [
        Firing(
            pk,
            f"expansion:{days}:{period}",
            {"usage_now": n, "usage_before": b, "growth_percent": round(100 * (n - b) / b, 1)},
        )
        for pk, n, b in rows
    ]


def no_survey_in(
    playbook: Playbook, accounts: QuerySet[Account], now: dt.datetime, *, only_new: bool = False
) -> list[Firing]:
    """No NPS answer for ``days`` (counted from the last answer, or the contract start / creation).

    Once per period of ``days`` without an answer: an account that does not answer is asked again
    each period; an answer starts a new count.
    """
    days = _param(playbook, "days")
    answers = SurveyResponse.objects.filter(
        account=OuterRef("pk"), kind=SurveyResponse.Kind.NPS, responded_at__lt=now
    )
    last_answer = Subquery(answers.order_by("-responded_at").values("responded_at")[:1])
    anchor = Coalesce(_utc_date("last_answer"), "contract_start", _utc_date("created_at"))
    rows = (
        # "The last answer is older than ``days``, or there is none" as one probe per account.
        accounts.exclude(Exists(answers.filter(responded_at__gt=now - dt.timedelta(days=days))))
        .annotate(last_answer=last_answer)
        .annotate(anchor=anchor, period=_days(DaysBetween(Value(_today(now)), anchor), days))
        .filter(period__gte=1)
    )
    if only_new:
        key = Concat(Value(f"nps-due:{days}:"), _text("anchor"), Value(":"), _text("period"))
        rows = _unfired(playbook, rows, key)
    return [
        Firing(
            pk,
            f"nps-due:{days}:{anchor.isoformat()}:{period}",
            {"last_answer": _today(last).isoformat() if last else None, "days": days},
        )
        for pk, last, anchor, period in rows.values_list("pk", "last_answer", "anchor", "period")
    ]


def segment_entered(playbook: Playbook, accounts: QuerySet[Account], now: dt.datetime) -> list[Firing]:
    """The account entered RFM ``segment`` after the playbook became active; once per entry.

    The entry time is the stored ``rfm_segment_since`` (insights step), kept while the account
    stays in the segment, so reruns keep the same key.
    """
    segment = _param(playbook, "segment", str)
    rows = AccountValue.objects.filter(
        account__in=accounts,
        rfm_segment=segment,
        rfm_segment_since__gte=playbook.active_since,
        rfm_segment_since__lte=now,
    ).values_list("account_id", "rfm_segment_since", "previous_rfm_segment", "clv")
    return [
        Firing(
            pk,
            f"segment:{segment}:{since.isoformat()}",
            {
                "segment": segment,
                "entered_at": since.isoformat(),
                "previous_segment": before or None,
                "clv": str(clv) if clv is not None else None,
            },
        )
        for pk, since, before, clv in rows
    ]


# --- triggers over health ----------------------------------------------------------------


def band_entered(
    playbook: Playbook, accounts: QuerySet[Account], now: dt.datetime, *, only_new: bool = False
) -> list[Firing]:
    """The account is in ``band`` and entered it after the playbook became active; once per entry.

    The entry is the account's ``health_band_since``: the first score of its current run in that
    band (the recompute keeps it), so a rerun, or an account that stays red for weeks, keeps the
    same key. ``only_new``: without the accounts where the playbook fired since that entry (a
    firing of an earlier entry is older than the account's leaving that band).
    """
    band = _param(playbook, "band", str)
    rows = accounts.filter(
        health_band=band, health_band_since__gte=playbook.active_since, health_band_since__lte=now
    )
    if only_new:
        fired = PlaybookRun.objects.filter(
            playbook=playbook,
            account=OuterRef("pk"),
            trigger_key__startswith=f"band:{band}:",
            fired_at__gte=OuterRef("health_band_since"),
        )
        rows = rows.exclude(Exists(fired))
    return [
        Firing(
            pk,
            f"band:{band}:{entered.isoformat()}",
            {
                "band": band,
                "entered_at": entered.isoformat(),
                "score": float(score) if score is not None else None,
            },
        )
        for pk, entered, score in rows.values_list("pk", "health_band_since", "health_score")
    ]


def score_dropped(playbook: Playbook, accounts: QuerySet[Account], now: dt.datetime) -> list[Firing]:
    """The current score is at least ``points`` below the peak of the last ``days``; once per peak."""
    points = _param(playbook, "points", float)
    days = _param(playbook, "days")
    scored = accounts.filter(health_score__isnull=False)
    since = now - dt.timedelta(days=days)
    drop = Decimal(str(points))
    if connection.vendor == "postgresql":
        rows = _window_peaks(scored, since=since, now=now, drop=drop)
    else:
        rows = _window_peaks_portable(scored, since=since, now=now)
    earliest_peak = playbook.active_since - dt.timedelta(days=days)
    return [
        Firing(
            pk,
            f"drop:{points:g}:{days}:{peak_at.isoformat()}",
            {
                "peak": float(peak),
                "peak_at": peak_at.isoformat(),
                "score": float(score),
                "drop": float(peak - score),
                "days": days,
            },
        )
        for pk, peak, peak_at, score in rows
        if peak is not None and peak >= score + drop and peak_at >= earliest_peak
    ]


def _window_peaks(
    accounts: QuerySet[Account], *, since: dt.datetime, now: dt.datetime, drop: Decimal | None = None
) -> list[tuple[int, Decimal, dt.datetime, Decimal]]:
    """(account, peak score in ``[since, now]``, its first time, current score), in SQL.

    One hashed ``GROUP BY`` gives each account's peak; with ``drop``, only the accounts whose
    current score is at least ``drop`` below it go on (a few in a thousand), and only their first
    time at the peak is looked up. A ``DISTINCT ON`` sorting the whole window's history (every
    full rescore writes a row per account) took 16.6 s at 1M accounts.
    """
    from health.models import HealthScore

    try:
        ids_sql, ids_params = accounts.order_by().values("pk").query.sql_with_params()
    except EmptyResultSet:  # ``pk__in=[]``: an incremental run where nothing changed
        return []
    history, account = HealthScore._meta.db_table, Account._meta.db_table
    dropped = "" if drop is None else "AND p.peak >= a.health_score + %s"
    sql = f"""
        WITH peaks AS (
            SELECT h.account_id, MAX(h.score) AS peak
              FROM {history} h
             WHERE h.account_id IN ({ids_sql})
               AND h.computed_at >= %s AND h.computed_at <= %s AND h.score IS NOT NULL
             GROUP BY h.account_id
        )
        SELECT p.account_id, p.peak,
               (SELECT MIN(h.computed_at) FROM {history} h
                 WHERE h.account_id = p.account_id AND h.score = p.peak
                   AND h.computed_at >= %s AND h.computed_at <= %s),
               a.health_score
          FROM peaks p
          JOIN {account} a ON a.id = p.account_id
         WHERE true {dropped}
    """
    params = [*ids_params, since, now, since, now, *([] if drop is None else [drop])]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _window_peaks_portable(
    accounts: QuerySet[Account], *, since: dt.datetime, now: dt.datetime
) -> list[tuple[int, Decimal, dt.datetime, Decimal]]:
    """The same as ``_window_peaks`` with correlated subqueries (SQLite, for ``make run``)."""
    from health.models import HealthScore

    window = HealthScore.objects.filter(
        account=OuterRef("pk"), computed_at__gte=since, computed_at__lte=now, score__isnull=False
    ).order_by("-score", "computed_at")
    return list(
        accounts.annotate(
            peak=Subquery(window.values("score")[:1]), peak_at=Subquery(window.values("computed_at")[:1])
        )
        .filter(peak__isnull=False)
        .values_list("pk", "peak", "peak_at", "health_score")
    )


# --- triggers over journeys ---------------------------------------------------------------


def stage_entered(playbook: Playbook, accounts: QuerySet[Account], now: dt.datetime) -> list[Firing]:
    """The account entered ``stage`` (a stage key) and is still in that visit; once per visit."""
    from journeys.models import AccountJourney

    stage = _param(playbook, "stage", str)
    visits = AccountJourney.objects.filter(
        account__in=accounts, stage__key=stage, entered_at__gte=playbook.active_since, entered_at__lt=now
    )
    return [
        Firing(account_id, f"stage:{visit_id}", {"stage": stage, "entered_at": entered.isoformat()})
        for account_id, visit_id, entered in visits.values_list("account_id", "visit_id", "entered_at")
    ]


def milestone_overdue(playbook: Playbook, accounts: QuerySet[Account], now: dt.datetime) -> list[Firing]:
    """A milestone (of key ``milestone`` if given) is overdue; once per milestone instance."""
    from journeys.models import Milestone

    key = (playbook.trigger_params or {}).get("milestone") or None
    overdue = Milestone.objects.filter(account__in=accounts, status=Milestone.Status.OVERDUE)
    if key:
        overdue = overdue.filter(definition__key=key)
    return [
        Firing(account_id, f"milestone:{pk}", {"milestone": name, "due_at": due.isoformat()})
        for pk, account_id, name, due in overdue.values_list("pk", "account_id", "definition__name", "due_at")
    ]


TRIGGERS: dict[str, Callable[[Playbook, QuerySet[Account], dt.datetime], list[Firing]]] = {
    Trigger.BAND_ENTERED: band_entered,
    Trigger.SCORE_DROPPED: score_dropped,
    Trigger.RENEWAL_WITHIN: renewal_within,
    Trigger.NPS_DETRACTOR: nps_detractor,
    Trigger.INACTIVITY: inactivity,
    Trigger.RECURRING_REVIEW: recurring_review,
    Trigger.TASK_OVERDUE: task_overdue,
    Trigger.EXPANSION_SIGNAL: expansion_signal,
    Trigger.STAGE_ENTERED: stage_entered,
    Trigger.MILESTONE_OVERDUE: milestone_overdue,
    Trigger.SEGMENT_ENTERED: segment_entered,
    Trigger.NO_SURVEY_IN: no_survey_in,
}


# Triggers that fire at most once per account and can leave out, in SQL, the occurrences already
# fired (``only_new``): most of a daily run's firings are the same as the day before.
EXCLUDE_FIRED_IN_SQL = frozenset(
    {
        Trigger.RENEWAL_WITHIN,
        Trigger.INACTIVITY,
        Trigger.RECURRING_REVIEW,
        Trigger.EXPANSION_SIGNAL,
        Trigger.NO_SURVEY_IN,
        Trigger.BAND_ENTERED,
    }
)


def evaluate_trigger(
    playbook: Playbook, *, now: dt.datetime, scope: Collection[int] | None = None, only_new: bool = False
) -> list[Firing]:
    """The firings of one playbook now: its trigger over the accounts passing its filters.

    ``scope`` limits it to those accounts (None: every account). ``only_new``: the caller only
    acts on occurrences not fired yet, so a trigger may leave out those it already fired
    (``EXCLUDE_FIRED_IN_SQL``); without it every account where the condition holds is returned,
    which closing cleared tasks needs.
    """
    trigger = TRIGGERS.get(playbook.trigger)
    if trigger is None:
        raise TriggerConfigError(f"unknown trigger {playbook.trigger!r}")
    # In name order (the accounts' default): the runs, and so the round-robin and least-loaded
    # assignees, follow the firings' order.
    accounts = eligible_accounts(playbook, scope)
    if only_new and playbook.trigger in EXCLUDE_FIRED_IN_SQL:
        return trigger(playbook, accounts, now, only_new=True)
    return trigger(playbook, accounts, now)
