"""The journeys step: one set-based pass over all accounts. Safe to run twice.

A pass places new accounts in the first stage of their journey, completes rule milestones from
events, applies stage transitions, creates the milestones of every newly entered stage, marks
overdue milestones and keeps ``Account.stage`` equal to the current stage's key. It returns what
changed (``JourneyChanges``) for the playbooks step; a second pass at the same time returns
nothing and writes nothing. An incremental pass (the 15-minute run) reads the milestones of the
accounts that changed since the previous pass only (``evaluate_journeys``).

Query count does not depend on the number of accounts: account state is read in one query,
transitions are decided in memory (they are a small state machine per account) and written with
``bulk_create`` / one ``UPDATE`` each; rule milestones are answered with one aggregate query per
rule kind (the daily rollup ``EventDaily`` where it can answer, raw ``Event`` for distinct
contacts). Transitions made because milestones completed can open a stage whose own rule
milestones are already met, so the pass repeats "complete → transition" until nothing moves —
at most once per stage of the longest journey, a bound set by configuration, not by data.

Transitions, in the order they win when several are due at the same moment:
  1. any stage → the journey's ``on_churn`` stage when the account's status is churned (at the
     churn date); an active account in that stage goes back to the first stage (reactivated);
  2. a ``before_renewal`` stage → its ``renewed_returns_to`` stage when the renewal date moved
     past the one it was entered for (renewed);
  3. an earlier stage → a ``before_renewal`` stage from ``days_before_renewal`` days before the
     renewal date (once per renewal date, so a manual move out of it sticks);
  4. a stage → the next stage by order when that is ``after_previous``, once the stage's required
     milestones are done or its ``max_days`` have passed.
New accounts enter their first stage at ``contract_start`` (midnight UTC) when it is in the past,
else now, and walk forward through the history those rules imply; only the stage they end in
gets milestone instances. Rule windows are whole UTC days from the day the stage was entered.
"""

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import Count, DateField, Exists, F, Max, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce, TruncDate

from accounts.bulk import copy_insert
from accounts.locking import step_lock
from accounts.lookups import any_of
from accounts.models import Account, Event, EventDaily
from journeys.models import (
    AccountJourney,
    Journey,
    JourneyPass,
    Milestone,
    MilestoneDefinition,
    Stage,
    StageChange,
)

STEP_LOCK = "journeys.evaluate"
Completion = MilestoneDefinition.Completion
Cause = StageChange.Cause
EnteredBy = Stage.EnteredBy
# A later round names its accounts in the query up to this many (SQLite allows ~32,000 parameters).
SCOPE_AS_LIST_MAX = 10_000
# Passes older than this are pruned (only the latest one is read).
PASSES_KEPT = dt.timedelta(days=7)

# --- what a pass returns ---------------------------------------------------------------------


@dataclass(frozen=True)
class StageEntered:
    account_id: int
    from_stage: str | None  # stage key; None when the account was placed
    to_stage: str
    changed_at: dt.datetime
    cause: str  # a StageChange.Cause value


@dataclass(frozen=True)
class MilestoneCompleted:
    account_id: int
    milestone_id: int
    key: str
    stage: str
    completed_at: dt.datetime


@dataclass(frozen=True)
class MilestoneOverdue:
    account_id: int
    milestone_id: int
    key: str
    stage: str
    due_at: dt.datetime


@dataclass
class JourneyChanges:
    stages_entered: list[StageEntered] = field(default_factory=list)
    milestones_completed: list[MilestoneCompleted] = field(default_factory=list)
    milestones_overdue: list[MilestoneOverdue] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.stages_entered or self.milestones_completed or self.milestones_overdue)

    def counts(self) -> dict[str, int]:
        return {
            "stages_entered": len(self.stages_entered),
            "milestones_completed": len(self.milestones_completed),
            "milestones_overdue": len(self.milestones_overdue),
        }


# --- configuration -----------------------------------------------------------------------------


@dataclass
class JourneyConfig:
    """All journeys, stages and milestone definitions, read once per pass (three queries)."""

    journeys: dict[int, Journey]
    stages: dict[int, Stage]
    stages_of: dict[int, list[Stage]]  # journey id → stages by order
    definitions_of: dict[int, list[MilestoneDefinition]]  # stage id → definitions
    default_journey: Journey | None
    journey_of_segment: dict[str, Journey]

    @classmethod
    def load(cls) -> "JourneyConfig":
        journeys = {j.id: j for j in Journey.objects.all()}
        stages = {s.id: s for s in Stage.objects.order_by("journey_id", "order")}
        stages_of: dict[int, list[Stage]] = defaultdict(list)
        for stage in stages.values():
            stages_of[stage.journey_id].append(stage)
        definitions_of: dict[int, list[MilestoneDefinition]] = defaultdict(list)
        for definition in MilestoneDefinition.objects.order_by("stage_id", "order", "id"):
            definitions_of[definition.stage_id].append(definition)
        return cls(
            journeys=journeys,
            stages=stages,
            stages_of=stages_of,
            definitions_of=definitions_of,
            default_journey=next((j for j in journeys.values() if j.is_default), None),
            journey_of_segment={j.segment.lower(): j for j in journeys.values() if j.segment},
        )

    def journey_for(self, segment: str) -> Journey | None:
        return self.journey_of_segment.get((segment or "").lower(), self.default_journey)

    def first_stage(self, journey_id: int) -> Stage | None:
        stages = self.stages_of.get(journey_id, [])
        return next((s for s in stages if s.entered_by == EnteredBy.FIRST), stages[0] if stages else None)

    def stage_of_kind(self, journey_id: int, kind: str) -> Stage | None:
        return next((s for s in self.stages_of.get(journey_id, []) if s.entered_by == kind), None)

    def next_stage(self, stage: Stage) -> Stage | None:
        later = [s for s in self.stages_of[stage.journey_id] if s.order > stage.order]
        return later[0] if later else None

    def digest(self) -> str:
        """A fingerprint of every rule a pass applies (journeys, stages, milestone definitions)."""
        rows = sorted(
            (
                type(row).__name__,
                row.pk,
                [(f.attname, getattr(row, f.attname)) for f in row._meta.concrete_fields],
            )
            for row in [
                *self.journeys.values(),
                *self.stages.values(),
                *(d for definitions in self.definitions_of.values() for d in definitions),
            ]
        )  # by model and id: journeys' names, their order, are not unique
        return hashlib.sha256(repr(rows).encode()).hexdigest()

    def max_rounds(self) -> int:
        return max((len(s) for s in self.stages_of.values()), default=0) + 2


def midnight_utc(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC)


def new_milestones(
    *, config: JourneyConfig, account_id: int, visit: StageChange, entered_at: dt.datetime
) -> list[Milestone]:
    """Unsaved milestone instances of a stage visit: due and windowed from the time it began."""
    start = entered_at.astimezone(dt.UTC).date()
    return [
        Milestone(
            account_id=account_id,
            visit=visit,
            definition=definition,
            due_at=entered_at + dt.timedelta(days=definition.due_days),
            window_start=start,
            window_end=start + dt.timedelta(days=definition.window_days) if definition.window_days else None,
        )
        for definition in config.definitions_of.get(visit.to_stage_id, [])
    ]


# --- rule milestones ---------------------------------------------------------------------------


def _open_current_milestones(scope: Collection[int] | None = None):
    """Milestones still open in the stage visit each account is in now (of ``scope``: every account)."""
    milestones = Milestone.objects.filter(
        status__in=Milestone.OPEN_STATUSES, visit_id=F("account__journey_state__visit_id")
    )
    return milestones if scope is None else milestones.filter(any_of("account_id", sorted(scope)))


def _window_end():
    return Coalesce(OuterRef("window_end"), Value(dt.date.max), output_field=DateField())


def _met_event_count(scope: Collection[int] | None) -> list[tuple]:
    """At least N of the event within the window, from the daily rollup."""
    total = (
        EventDaily.objects.filter(
            account_id=OuterRef("account_id"),
            name=OuterRef("definition__event"),
            day__gte=OuterRef("window_start"),
            day__lt=_window_end(),
        )
        .order_by()
        .values("account_id")
        .annotate(total=Sum("count"))
        .values("total")
    )
    return list(
        _open_current_milestones(scope)
        .filter(definition__completion=Completion.EVENT_COUNT)
        .annotate(total=Subquery(total))
        .filter(total__gte=F("definition__threshold"))
        .values_list("id", "account_id", "definition__key", "definition__stage__key")
    )


def _met_distinct_contacts(scope: Collection[int] | None) -> list[tuple]:
    """At least N distinct contacts did the event within the window, from raw events."""
    contacts = (
        Event.objects.annotate(day=TruncDate("occurred_at", tzinfo=dt.UTC))
        .filter(
            account_id=OuterRef("account_id"),
            name=OuterRef("definition__event"),
            contact_id__isnull=False,
            day__gte=OuterRef("window_start"),
            day__lt=_window_end(),
        )
        .order_by()
        .values("account_id")
        .annotate(contacts=Count("contact_id", distinct=True))
        .values("contacts")
    )
    return list(
        _open_current_milestones(scope)
        .filter(definition__completion=Completion.DISTINCT_CONTACTS)
        .annotate(contacts=Subquery(contacts))
        .filter(contacts__gte=F("definition__threshold"))
        .values_list("id", "account_id", "definition__key", "definition__stage__key")
    )


def _met_active_weeks(scope: Collection[int] | None) -> list[tuple]:
    """Active (any matching event) on at least K distinct weeks of the window, from the rollup."""
    rows = (
        _open_current_milestones(scope)
        .filter(definition__completion=Completion.ACTIVE_WEEKS)
        # One filter() call: every condition applies to the same joined rollup row.
        .filter(
            Q(definition__event="") | Q(account__event_days__name=F("definition__event")),
            account__event_days__day__gte=F("window_start"),
            account__event_days__day__lt=F("window_end"),
            account__event_days__count__gt=0,
        )
        .values_list(
            "id",
            "account_id",
            "definition__key",
            "definition__stage__key",
            "definition__threshold",
            "window_start",
            "account__event_days__day",
        )
        .distinct()
    )
    weeks: dict[tuple, set[int]] = defaultdict(set)
    thresholds: dict[tuple, int] = {}
    for milestone_id, account_id, key, stage, threshold, start, day in rows:
        ident = (milestone_id, account_id, key, stage)
        weeks[ident].add((day - start).days // 7)
        thresholds[ident] = threshold
    return [ident for ident, active in weeks.items() if len(active) >= thresholds[ident]]


def complete_rule_milestones(
    *, now: dt.datetime, scope: Collection[int] | None = None
) -> list[MilestoneCompleted]:
    """Mark done every open rule milestone of a current stage whose rule is met (four queries).

    ``scope``: only these accounts' milestones (None: every account's).
    """
    met = _met_event_count(scope) + _met_active_weeks(scope) + _met_distinct_contacts(scope)
    if not met:
        return []
    Milestone.objects.filter(id__in=[row[0] for row in met], status__in=Milestone.OPEN_STATUSES).update(
        status=Milestone.Status.DONE, completed_at=now, completed_via=Milestone.CompletedBy.RULE
    )
    return [
        MilestoneCompleted(account_id=account_id, milestone_id=mid, key=key, stage=stage, completed_at=now)
        for mid, account_id, key, stage in sorted(met)
    ]


def mark_overdue(*, now: dt.datetime) -> list[MilestoneOverdue]:
    """Pending milestones of current stages past their due time become overdue (four queries).

    One that was already due when Lifeline learnt of the stage visit (an account placed with
    its history) is skipped instead: nobody could have acted on it, so it alerts nobody.
    """
    past_due = _open_current_milestones().filter(status=Milestone.Status.PENDING, due_at__lt=now)
    past_due.filter(due_at__lte=F("visit__recorded_at")).update(
        status=Milestone.Status.SKIPPED, skipped_at=now
    )
    rows = list(
        past_due.filter(due_at__gt=F("visit__recorded_at"))
        .values_list("id", "account_id", "definition__key", "definition__stage__key", "due_at")
        .order_by("id")
    )
    if rows:
        Milestone.objects.filter(id__in=[row[0] for row in rows], status=Milestone.Status.PENDING).update(
            status=Milestone.Status.OVERDUE
        )
    return [
        MilestoneOverdue(account_id=account_id, milestone_id=mid, key=key, stage=stage, due_at=due_at)
        for mid, account_id, key, stage, due_at in rows
    ]


# --- transitions -------------------------------------------------------------------------------


@dataclass
class _Position:
    """An account's state while the pass walks it forward in memory."""

    journey_id: int
    stage: Stage
    entered_at: dt.datetime
    renewal_date_handled: dt.date | None


@dataclass(frozen=True)
class _AccountFacts:
    id: int
    status: str
    churned_at: dt.date | None
    renewal_date: dt.date | None
    contract_start: dt.date | None


def _next_move(
    *,
    config: JourneyConfig,
    account: _AccountFacts,
    at: _Position,
    required_done_at: dt.datetime | None,
    now: dt.datetime,
) -> tuple[dt.datetime, Stage, str] | None:
    """The earliest transition due for the account by ``now``, if any."""
    stage = at.stage
    candidates: list[tuple[dt.datetime, int, Stage, str]] = []
    churn_stage = config.stage_of_kind(at.journey_id, EnteredBy.ON_CHURN)
    if account.status == Account.Status.CHURNED:
        if churn_stage is not None and stage.entered_by != EnteredBy.ON_CHURN:
            churned = midnight_utc(account.churned_at) if account.churned_at else now
            candidates.append((min(max(at.entered_at, churned), now), 0, churn_stage, Cause.CHURNED))
    elif stage.entered_by == EnteredBy.ON_CHURN:
        first = config.first_stage(at.journey_id)
        if first is not None and first != stage:
            candidates.append((now, 0, first, Cause.REACTIVATED))
    if stage.entered_by != EnteredBy.ON_CHURN:
        # For a churned account these only win when due before the churn (its history).
        renewal = account.renewal_date
        handled = at.renewal_date_handled
        returns_to = stage.renewed_returns_to_id and config.stages.get(stage.renewed_returns_to_id)
        is_renewal = stage.entered_by == EnteredBy.BEFORE_RENEWAL
        if is_renewal and returns_to and renewal and handled and renewal > handled:
            candidates.append((now, 1, returns_to, Cause.RENEWED))
        for target in config.stages_of[at.journey_id]:
            if (
                target.entered_by == EnteredBy.BEFORE_RENEWAL
                and target.order > stage.order
                and renewal is not None
                and (handled is None or renewal > handled)
            ):
                opens = midnight_utc(renewal - dt.timedelta(days=target.days_before_renewal))
                if opens <= now:
                    candidates.append((max(at.entered_at, opens), 2, target, Cause.RENEWAL_WINDOW))
        following = config.next_stage(stage)
        if following is not None and following.entered_by == EnteredBy.AFTER_PREVIOUS:
            if required_done_at is not None:
                candidates.append((max(at.entered_at, required_done_at), 3, following, Cause.MILESTONES))
            if stage.max_days is not None:
                ends = at.entered_at + dt.timedelta(days=stage.max_days)
                if ends <= now:
                    candidates.append((ends, 3, following, Cause.MAX_DURATION))
    if not candidates:
        return None
    when, _, target, cause = min(candidates, key=lambda c: (c[0], c[1]))
    return when, target, cause


def _stages_left_by_milestones(config: JourneyConfig) -> list[int]:
    """The stages an account leaves when its required milestones are done (``_next_move``): those
    followed by an ``after_previous`` stage, not a churn stage."""
    return [
        stage.id
        for stage in config.stages.values()
        if stage.entered_by != EnteredBy.ON_CHURN
        and (following := config.next_stage(stage)) is not None
        and following.entered_by == EnteredBy.AFTER_PREVIOUS
    ]


def _required_done(config: JourneyConfig, scope: set[int] | None = None) -> QuerySet:
    """Accounts whose current stage has required milestones, all done: (account id, last done at).

    Only for accounts in the stages that milestones can leave (the account's current stage, as
    ``_next_move`` reads it, not the definitions' stage, which an admin may have edited): an
    account whose last stage's milestones are all done has nowhere to go, and aggregating those
    (most accounts, at 1M: 4 s a pass) is waste.
    """
    milestones = Milestone.objects.filter(
        visit_id=F("account__journey_state__visit_id"),
        definition__required=True,
        account__journey_state__stage_id__in=_stages_left_by_milestones(config),
    )
    if scope is not None:
        milestones = milestones.filter(any_of("account_id", sorted(scope)))
    return (
        milestones.values("account_id")
        .annotate(
            total=Count("id"),
            done=Count("id", filter=Q(status=Milestone.Status.DONE)),
            last_done=Max("completed_at"),
        )
        .filter(total=F("done"))
        .order_by()
        .values_list("account_id", "last_done")
    )


def may_move(*, config: JourneyConfig, now: dt.datetime, required_done: Collection[int] | None = None) -> Q:
    """Accounts that ``_next_move`` might move by ``now``: a superset, read in SQL instead of walked.

    Every other account has no candidate move (``_next_move`` returns None at once), so the first
    round of a pass reads only these instead of walking every account in Python: not placed yet
    (or in a deleted stage); churned outside a churn stage, or back from churn; a renewal date not
    handled yet whose window may be open (or any, from a renewal stage: a renewed return); every
    required milestone done; a stage's maximum duration over. ``required_done``: the accounts
    with every required milestone done, when the caller has them (else a subquery finds them).
    """
    churn_stages = [s.id for s in config.stages.values() if s.entered_by == EnteredBy.ON_CHURN]
    renewal_stages = [s.id for s in config.stages.values() if s.entered_by == EnteredBy.BEFORE_RENEWAL]
    in_churn_stage = Q(journey_state__stage_id__in=churn_stages)
    churned = Q(status=Account.Status.CHURNED)
    may = (
        Q(journey_state__isnull=True)
        | ~Q(journey_state__stage_id__in=list(config.stages))
        | (churned & ~in_churn_stage)
        | (in_churn_stage & ~churned)
        | (
            Q(id__in=_required_done(config).values("account_id"))
            if required_done is None
            else any_of("id", required_done)
        )
    )
    if renewal_stages:
        # A window opens at midnight UTC ``days_before_renewal`` days before the date (a day's margin).
        opens_by = now.astimezone(dt.UTC).date() + dt.timedelta(
            days=max(config.stages[pk].days_before_renewal for pk in renewal_stages) + 1
        )
        may |= (
            ~in_churn_stage
            & Q(renewal_date__isnull=False)
            & (
                Q(journey_state__renewal_date_handled__isnull=True)
                | Q(renewal_date__gt=F("journey_state__renewal_date_handled"))
            )
            & (Q(journey_state__stage_id__in=renewal_stages) | Q(renewal_date__lte=opens_by))
        )
    for stage in config.stages.values():
        if stage.max_days is not None:
            ends_by = now.astimezone(dt.UTC) - dt.timedelta(days=stage.max_days)  # as _next_move adds days
            may |= Q(journey_state__stage_id=stage.id, journey_state__entered_at__lte=ends_by)
    return may


def movable_by_time(*, config: JourneyConfig, since: dt.datetime, now: dt.datetime) -> set[int]:
    """Accounts that time alone may have made movable in ``(since, now]`` (two indexed reads).

    A renewal window that opened (the renewal date ``days_before_renewal`` days ahead of a day
    in the span) or a stage's maximum duration that ended in the span. Every other move
    ``_next_move`` can make is due to the account's own data (placement, churn, renewal, required
    milestones), so the accounts whose data did not change since a pass at ``since`` that walked
    them with the same configuration, and whose thresholds did not pass, have no move to make now.
    """
    # In UTC: days added on a local clock would move across a daylight saving change.
    since, now = since.astimezone(dt.UTC), now.astimezone(dt.UTC)
    # A window opens at midnight UTC of (renewal date - days before): in the span when that day
    # is after the day of ``since`` and not after the day of ``now``.
    first_day = since.date() + dt.timedelta(days=1)
    last_day = now.date()
    windows = {
        s.days_before_renewal for s in config.stages.values() if s.entered_by == EnteredBy.BEFORE_RENEWAL
    }
    renewing = Q()
    for days_before in windows:
        ahead = dt.timedelta(days=days_before)
        renewing |= Q(renewal_date__gte=first_day + ahead, renewal_date__lte=last_day + ahead)
    over = Q()
    for stage in config.stages.values():
        if stage.max_days is not None:  # it ends at entered_at + max_days exactly (_next_move)
            duration = dt.timedelta(days=stage.max_days)
            over |= Q(stage_id=stage.id, entered_at__gt=since - duration, entered_at__lte=now - duration)
    ids: set[int] = set()
    if renewing:
        ids.update(Account.objects.filter(renewing).values_list("id", flat=True))
    if over:
        ids.update(AccountJourney.objects.filter(over).values_list("account_id", flat=True))
    return ids


def first_round_scope(
    *, config: JourneyConfig, since: dt.datetime, now: dt.datetime, changed: Collection[int]
) -> set[int] | None:
    """The accounts the first round of an incremental pass walks (None: ``may_move`` over all).

    Those whose data changed since the previous pass (at ``since``, with the same configuration)
    plus those time may have made movable since (``movable_by_time``), instead of every account
    that ``may_move`` (at 1M accounts ~1 s).
    """
    return _as_list_scope(set(changed) | movable_by_time(config=config, since=since, now=now))


def apply_transitions(
    *,
    config: JourneyConfig,
    now: dt.datetime,
    scope: set[int] | None = None,
    required_scope: set[int] | None = None,
) -> list[StageEntered]:
    """Place new accounts and move every account (or those in ``scope``) as far as the rules go by ``now``.

    ``required_scope``: the only accounts whose required milestones may have been done since
    they were last walked (None: any account's).
    """
    required_done = dict(_required_done(config, scope if required_scope is None else required_scope))
    if scope is None:
        # On PostgreSQL the required milestones aggregated once (at 1M accounts, ~4 s a pass) go
        # to may_move as one array; elsewhere (SQLite's parameter limit) it asks again.
        done = list(required_done) if connection.vendor == "postgresql" else None
        accounts = Account.objects.filter(may_move(config=config, now=now, required_done=done))
    else:
        accounts = Account.objects.filter(any_of("id", sorted(scope)))
    accounts = accounts.values_list(
        "id",
        "status",
        "churned_at",
        "renewal_date",
        "contract_start",
        "segment",
        "journey_state__journey_id",
        "journey_state__stage_id",
        "journey_state__entered_at",
        "journey_state__renewal_date_handled",
        "journey_state__visit_id",
    ).order_by("id")
    changes: list[StageChange] = []
    final: dict[int, tuple[_Position, StageChange]] = {}
    left_visits: list[int] = []
    entered: list[StageEntered] = []
    for row in accounts:
        (
            account_id,
            status,
            churned_at,
            renewal,
            start,
            segment,
            journey_id,
            stage_id,
            entered_at,
            handled,
            visit,
        ) = row
        facts = _AccountFacts(account_id, status, churned_at, renewal, start)
        moves: list[tuple[Stage | None, Stage, dt.datetime, str]] = []
        if stage_id is None or stage_id not in config.stages:
            journey = config.journey_for(segment)
            first = config.first_stage(journey.id) if journey else None
            if first is None:
                continue
            placed_at = min(midnight_utc(start), now) if start else now
            position = _Position(journey.id, first, placed_at, None)
            moves.append((None, first, placed_at, Cause.PLACED))
        else:
            position = _Position(journey_id, config.stages[stage_id], entered_at, handled)
        done_at = required_done.get(account_id) if not moves else None
        for _ in range(config.max_rounds() * 2):
            move = _next_move(config=config, account=facts, at=position, required_done_at=done_at, now=now)
            if move is None:
                break
            when, target, cause = move
            moves.append((position.stage, target, when, cause))
            if target.entered_by == EnteredBy.BEFORE_RENEWAL:
                position.renewal_date_handled = renewal
            position.stage, position.entered_at, done_at = target, when, None
        if not moves:
            continue
        if visit is not None:
            left_visits.append(visit)
        for from_stage, to_stage, when, cause in moves:
            change = StageChange(
                account_id=account_id,
                journey_id=position.journey_id,
                from_stage=from_stage,
                to_stage=to_stage,
                changed_at=when,
                cause=cause,
                reason=Cause(cause).label,
                recorded_at=now,
            )
            changes.append(change)
            entered.append(
                StageEntered(account_id, from_stage.key if from_stage else None, to_stage.key, when, cause)
            )
        final[account_id] = (position, changes[-1])
    if not changes:
        return []

    # COPY (accounts.bulk): the first pass writes a visit per stage walked through for every account.
    copy_insert(StageChange, changes, with_ids=True)
    copy_insert(
        AccountJourney,
        [
            AccountJourney(
                account_id=account_id,
                journey_id=position.journey_id,
                stage=position.stage,
                visit=visit,
                entered_at=position.entered_at,
                renewal_date_handled=position.renewal_date_handled,
                updated_at=now,
            )
            for account_id, (position, visit) in final.items()
        ],
        unique_fields=["account"],
        update_fields=["journey", "stage", "visit", "entered_at", "renewal_date_handled", "updated_at"],
    )
    if left_visits:
        skip_open_milestones_of_left_visits(now=now)
    copy_insert(
        Milestone,
        [
            milestone
            for account_id, (position, visit) in final.items()
            for milestone in new_milestones(
                config=config, account_id=account_id, visit=visit, entered_at=position.entered_at
            )
        ],
        ignore_conflicts=True,
    )
    return entered


def skip_open_milestones_of_left_visits(*, now: dt.datetime) -> int:
    """Pending milestones of a stage the account has left are skipped (overdue ones stay).

    ``NOT EXISTS``, not ``NOT IN (subquery)``: PostgreSQL hashes a ``NOT IN`` list only when it fits
    in ``work_mem``, else it scans the account journeys once per pending milestone (at 1M accounts,
    minutes; the anti-join is one pass over each).
    """
    current = AccountJourney.objects.filter(visit_id=OuterRef("visit_id"))
    return (
        Milestone.objects.filter(status=Milestone.Status.PENDING)
        .filter(~Exists(current))
        .update(status=Milestone.Status.SKIPPED, skipped_at=now)
    )


def sync_account_stage(account_ids: Collection[int] | None = None) -> int:
    """``Account.stage`` = the key of the account's current stage (one UPDATE).

    ``account_ids``: only these accounts (None: every account, which also catches a stage key
    an admin renamed).
    """
    current = AccountJourney.objects.filter(account_id=OuterRef("pk")).values("stage__key")[:1]
    accounts = Account.objects.filter(journey_state__isnull=False)
    if account_ids is not None:
        accounts = accounts.filter(any_of("pk", sorted(account_ids)))
    return accounts.exclude(stage=F("journey_state__stage__key")).update(stage=Subquery(current))


# --- the pass ----------------------------------------------------------------------------------


@transaction.atomic
def evaluate_journeys(*, now: dt.datetime, changed: Collection[int] | None = None) -> JourneyChanges:
    """One pass; returns what changed. Safe to run twice. Recorded (``JourneyPass``) with its time.

    ``changed`` (an incremental pass): the accounts whose inputs changed since the previous pass
    (``previous_pass_at``; ``playbooks.pipeline.incremental_journeys_scope``). Rule milestones and
    required milestones can only be met anew on those (new events, a milestone done by hand) or
    on an account this pass moves, so only theirs are read, and only the moved accounts' stage
    is synced. The first round walks those and the accounts whose renewal window opened or
    maximum duration ended since the previous pass (``first_round_scope``); overdue milestones
    are still looked at over every account. The pass is a full one when there was no previous
    pass or the configuration changed since (``JourneyConfig.digest``: an edited rule, a shortened
    duration, a new default journey, a deleted stage). None (a full pass): every account's
    milestones are read and every stage synced, which also applies an edited milestone rule
    (threshold, window, ``required``) or a renamed stage key to the accounts whose data did not
    change.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    config = JourneyConfig.load()
    changes = JourneyChanges()
    if not config.stages:
        return changes
    digest = config.digest()
    previous = None if changed is None else previous_pass(now=now)
    if previous is None or previous.config_digest != digest:
        changed = None  # nothing to start from, or an admin edited the journeys: every account
    # The first round walks the accounts that may move (None: may_move reads them over all).
    scope = None
    if changed is not None:
        scope = first_round_scope(config=config, since=previous.as_of, now=now, changed=changed)
    milestones_scope = _as_list_scope(changed)
    required_scope = milestones_scope  # which holds every account whose rule completes in round one
    for round_number in range(config.max_rounds()):
        completed = complete_rule_milestones(now=now, scope=milestones_scope)
        changes.milestones_completed += completed
        if round_number:
            # A later round can only move an account the previous round moved (its new stage's
            # milestones may be met already) or one whose milestones this round completed: the
            # others were walked as far as the rules take them, with the same data and ``now``.
            scope |= _ids(completed)
            if len(scope) > SCOPE_AS_LIST_MAX:
                scope = None  # a placement moves everyone: may_move again, not a million literals
            required_scope = scope
        entered = apply_transitions(config=config, now=now, scope=scope, required_scope=required_scope)
        changes.stages_entered += entered
        if not entered:
            break
        scope = _ids(entered)
        # Only the moved accounts have new milestones to check (a placement: everyone's).
        milestones_scope = scope if len(scope) <= SCOPE_AS_LIST_MAX else None
    changes.milestones_overdue = mark_overdue(now=now)
    sync_account_stage(None if changed is None else _as_list_scope(_ids(changes.stages_entered)))
    JourneyPass.objects.bulk_create(
        [JourneyPass(as_of=now, full=changed is None, config_digest=digest)], ignore_conflicts=True
    )
    JourneyPass.objects.filter(as_of__lt=now - PASSES_KEPT).delete()
    return changes


def previous_pass(*, now: dt.datetime) -> JourneyPass | None:
    """The latest journeys pass at or before ``now`` (full or incremental); None: never."""
    return JourneyPass.objects.filter(as_of__lte=now).order_by("-as_of").first()


def previous_pass_at(*, now: dt.datetime) -> dt.datetime | None:
    """When the latest journeys pass at or before ``now`` ran; None: never."""
    latest = previous_pass(now=now)
    return latest.as_of if latest is not None else None


def _ids(changes: Iterable[StageEntered | MilestoneCompleted]) -> set[int]:
    return {change.account_id for change in changes}


def _as_list_scope(ids: Collection[int] | None) -> set[int] | None:
    """``ids`` as a scope the queries can name: on PostgreSQL one array whatever its size; elsewhere
    (SQLite's parameter limit) None, every account, above ``SCOPE_AS_LIST_MAX``."""
    if ids is None or (connection.vendor != "postgresql" and len(ids) > SCOPE_AS_LIST_MAX):
        return None
    return set(ids)


def run_evaluation_step(*, now: dt.datetime, changed: Collection[int] | None = None) -> JourneyChanges | None:
    """The pipeline step: evaluate under the step lock; None if another run holds it."""
    with step_lock(STEP_LOCK) as acquired:
        if not acquired:
            return None
        return evaluate_journeys(now=now, changed=changed)
