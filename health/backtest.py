"""Backtests: does a scorecard's score, as of a past date, predict what then happened? (issue 9)

Rules (API.md, Health):

- ``as_of`` is a date D; the score is computed as of T = the end of D (midnight UTC starting
  D + 1), so it reads everything recorded on or before D and nothing later.
- An account is in the backtest if it had started by D (``contract_start`` on or before D, or,
  where it has none, its first event on or before D) and had not churned by D (``churned_at``
  null or after D; a churned account with no ``churned_at`` counts as churned by D, since when
  it left is unknown). Others are left out and counted, as are accounts the scorecard leaves
  unscored (no measure had data) and, for "renewed", accounts with no renewal in the window.
- The window is the dates (D, D + horizon_days].
  ``churned``: ``churned_at`` in the window.
  ``renewed``: accounts with a renewal date in the window, that is their current renewal date or
  one the audit log shows was moved forward (the CRM rolls the date on at renewal). Positive
  when a date in the window was moved forward, or else when the account did not churn in the
  window; the others are left out and counted.
  ``{"event": name, "within_days": n}``: at least one such event on the dates (D, D + n];
  ``within_days`` is the window, so ``horizon_days`` may be left out (if given it must agree).
- AUC is rank-based (ties count half) and oriented so that 1.0 means the score orders accounts
  the right way round: healthier accounts renew or do the event, and churn less. 0.5 is chance,
  0.0 perfectly backwards. Deciles run from the lowest scores (1) to the highest (10).
"""

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, QuerySet, Subquery

from accounts.models import Account, Event, EventDaily
from health.metrics import MAX_WINDOW_DAYS, MetricCache
from health.models import Scorecard
from health.renewal_forecast import renewal_rollovers
from health.scoring import band_for, compute_scores

DAY = dt.timedelta(days=1)
BANDS = ("red", "yellow", "green")
CHURNED, RENEWED, EVENT = "churned", "renewed", "event"


@dataclass(frozen=True)
class Outcome:
    kind: str  # churned, renewed or event
    event: str = ""
    within_days: int = 0

    @property
    def bad(self) -> bool:
        """A churn is the outcome a good score should make *less* likely."""
        return self.kind == CHURNED

    def as_json(self) -> str | dict[str, Any]:
        if self.kind == EVENT:
            return {"event": self.event, "within_days": self.within_days}
        return self.kind


@dataclass(frozen=True)
class BacktestRequest:
    as_of: dt.date
    outcome: Outcome
    horizon_days: int


@dataclass(frozen=True)
class BandRow:
    band: str
    accounts: int
    positives: int
    outcome_rate: float | None


@dataclass(frozen=True)
class DecileRow:
    decile: int  # 1: the lowest scores
    accounts: int
    positives: int
    outcome_rate: float | None
    lift: float | None  # outcome rate ÷ the overall rate
    min_score: float
    max_score: float


@dataclass(frozen=True)
class BacktestResult:
    scorecard_id: int
    as_of: dt.date
    outcome: Outcome
    horizon_days: int
    accounts: int
    positives: int
    auc: float | None
    bands: list[BandRow]
    deciles: list[DecileRow]
    excluded: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "scorecard": self.scorecard_id,
            "as_of": self.as_of.isoformat(),
            "outcome": self.outcome.as_json(),
            "horizon_days": self.horizon_days,
            "accounts": self.accounts,
            "positives": self.positives,
            "outcome_rate": _rate(self.positives, self.accounts),
            "auc": self.auc,
            "bands": [
                {
                    "band": b.band,
                    "accounts": b.accounts,
                    "positives": b.positives,
                    "outcome_rate": b.outcome_rate,
                }
                for b in self.bands
            ],
            "deciles": [
                {
                    "decile": d.decile,
                    "accounts": d.accounts,
                    "positives": d.positives,
                    "outcome_rate": d.outcome_rate,
                    "lift": d.lift,
                    "min_score": d.min_score,
                    "max_score": d.max_score,
                }
                for d in self.deciles
            ],
            "excluded": self.excluded,
        }


# --- input ------------------------------------------------------------------------------------


def _whole_days(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_WINDOW_DAYS:
        return None
    return value


def validate_backtest(data: Any, *, today: dt.date | None = None) -> BacktestRequest:
    """A backtest's parameters from JSON-like input; a ValidationError names each bad field.

    With ``today``, the outcome window must have ended by then (else the outcome is not known).
    """
    data = data if isinstance(data, Mapping) else {}
    errors: dict[str, list[str]] = {}
    days_message = f"must be a whole number of days from 1 to {MAX_WINDOW_DAYS}"
    as_of = None
    raw_as_of = data.get("as_of")
    if isinstance(raw_as_of, dt.date) and not isinstance(raw_as_of, dt.datetime):
        as_of = raw_as_of
    else:
        try:
            as_of = dt.date.fromisoformat(str(raw_as_of)) if raw_as_of else None
        except ValueError:
            as_of = None
    if as_of is None:
        errors["as_of"] = ["must be a date, YYYY-MM-DD"]
    raw_outcome = data.get("outcome")
    outcome = None
    if raw_outcome in (CHURNED, RENEWED):
        outcome = Outcome(raw_outcome)
    elif isinstance(raw_outcome, Mapping):
        name = raw_outcome.get("event")
        within = _whole_days(raw_outcome.get("within_days"))
        unknown = set(raw_outcome) - {"event", "within_days"}
        if not isinstance(name, str) or not 0 < len(name.strip()) <= 100:
            errors["outcome.event"] = ["must be an event name (1 to 100 characters)"]
        elif within is None:
            errors["outcome.within_days"] = [days_message]
        elif unknown:
            errors["outcome"] = [f"unknown field(s): {', '.join(sorted(unknown))}"]
        else:
            outcome = Outcome(EVENT, name.strip(), within)
    else:
        errors["outcome"] = ['must be "churned", "renewed" or {"event": name, "within_days": n}']
    raw_horizon = data.get("horizon_days")
    horizon = _whole_days(raw_horizon)
    if isinstance(raw_outcome, Mapping):  # an event outcome: within_days is the window
        if raw_horizon is None:
            horizon = outcome.within_days if outcome is not None else None
        elif outcome is not None and horizon != outcome.within_days:
            errors["horizon_days"] = ["must equal outcome.within_days (or be left out) for an event outcome"]
    elif horizon is None:
        errors["horizon_days"] = [days_message]
    if not errors and today is not None and as_of + dt.timedelta(days=horizon) > today:
        errors["as_of"] = [f"the outcome window must have ended: {as_of} + {horizon} days is after {today}"]
    if errors:
        raise ValidationError(errors)
    return BacktestRequest(as_of=as_of, outcome=outcome, horizon_days=horizon)


# --- population and outcomes ------------------------------------------------------------------


def as_of_moment(as_of: dt.date) -> dt.datetime:
    """T for a date: the end of that UTC day."""
    return dt.datetime.combine(as_of + DAY, dt.time(), tzinfo=dt.UTC)


@dataclass(frozen=True)
class Population:
    """The accounts in a backtest with their outcome (True: positive), and those left out."""

    outcomes: dict[int, bool]
    excluded: dict[str, int]


def accounts_for_scorecard(scorecard: Scorecard, accounts: QuerySet[Account]) -> QuerySet[Account]:
    """The accounts a scorecard is for: its segment's, or for a default one those of no segment with
    its own active scorecard (as the recompute and the preview choose)."""
    target = scorecard.segment.strip().lower()
    if target:
        return accounts.filter(segment__iexact=target)
    own = {
        s.strip().lower()
        for s in Scorecard.objects.filter(status=Scorecard.Status.ACTIVE)
        .exclude(segment="")
        .values_list("segment", flat=True)
    }
    for segment in own:
        accounts = accounts.exclude(segment__iexact=segment)
    return accounts


def population(
    *, accounts: QuerySet[Account], as_of: dt.date, outcome: Outcome, horizon_days: int
) -> Population:
    """Who is in the backtest and what happened to them in (as_of, as_of + horizon]; one query."""
    start = as_of_moment(as_of)
    end_date = as_of + horizon_days * DAY
    first_day = Subquery(
        EventDaily.objects.filter(account_id=OuterRef("pk"), count__gt=0).order_by("day").values("day")[:1]
    )
    rows = accounts.order_by("pk").annotate(first_day=first_day)
    columns = ["pk", "contract_start", "first_day", "status", "churned_at", "renewal_date"]
    if outcome.kind == EVENT:
        did = Event.objects.filter(
            account_id=OuterRef("pk"),
            name=outcome.event,
            occurred_at__gte=start,
            occurred_at__lt=start + outcome.within_days * DAY,
        )
        rows = rows.annotate(did=Exists(did))
        columns.append("did")
    excluded = {"not_started": 0, "churned": 0}
    rolled: set[int] = set()
    if outcome.kind == RENEWED:
        excluded["no_renewal_in_window"] = 0
        rolled = {pk for pk, _ in renewal_rollovers(start=as_of + DAY, end=end_date + DAY)}
    outcomes: dict[int, bool] = {}
    for row in rows.values_list(*columns):
        pk, contract_start, first, status, churned_at, renewal = row[:6]
        started = contract_start if contract_start is not None else first
        if started is None or started > as_of:
            excluded["not_started"] += 1
            continue
        if (churned_at is not None and churned_at <= as_of) or (
            churned_at is None and status == Account.Status.CHURNED
        ):
            excluded["churned"] += 1
            continue
        churned_in_window = churned_at is not None and as_of < churned_at <= end_date
        if outcome.kind == CHURNED:
            outcomes[pk] = churned_in_window
        elif outcome.kind == RENEWED:
            if pk not in rolled and (renewal is None or not as_of < renewal <= end_date):
                excluded["no_renewal_in_window"] += 1
                continue
            outcomes[pk] = pk in rolled or not churned_in_window
        else:
            outcomes[pk] = bool(row[6])
    return Population(outcomes, excluded)


# --- statistics -------------------------------------------------------------------------------


def rank_auc(scores: Sequence[float], positives: Sequence[bool]) -> float | None:
    """P(a positive scores above a negative), ties counted half (Mann-Whitney); None if one class is empty."""
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1  # the average rank of the tied run
        i = j + 1
    n_pos = sum(1 for p in positives if p)
    n_neg = len(positives) - n_pos
    if not n_pos or not n_neg:
        return None
    rank_sum = sum(r for r, p in zip(ranks, positives, strict=True) if p)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def _rate(positives: int, accounts: int) -> float | None:
    return round(positives / accounts, 4) if accounts else None


def _deciles(scored: list[tuple[float, int, bool]], overall: float | None) -> list[DecileRow]:
    scored = sorted(scored)  # lowest scores first; ties by account id
    n = len(scored)
    groups: dict[int, list[tuple[float, int, bool]]] = {}
    for index, row in enumerate(scored):
        groups.setdefault(index * 10 // n + 1, []).append(row)
    rows = []
    for decile, members in sorted(groups.items()):
        positives = sum(1 for _, _, p in members if p)
        rate = _rate(positives, len(members))
        rows.append(
            DecileRow(
                decile=decile,
                accounts=len(members),
                positives=positives,
                outcome_rate=rate,
                lift=round(rate / overall, 2) if rate is not None and overall else None,
                min_score=members[0][0],
                max_score=members[-1][0],
            )
        )
    return rows


# --- the backtest -----------------------------------------------------------------------------


def evaluate(
    *,
    scorecard: Scorecard,
    request: BacktestRequest,
    pop: Population,
    scope: QuerySet[Account],
    cache: MetricCache | None = None,
) -> BacktestResult:
    """Score ``pop``'s accounts with ``scorecard`` as of the request's date and measure the fit."""
    assigned = dict.fromkeys(pop.outcomes, scorecard)
    results = compute_scores(as_of=as_of_moment(request.as_of), scope=scope, assigned=assigned, cache=cache)
    scored: list[tuple[float, int, bool]] = []
    by_band = {band: [0, 0] for band in BANDS}
    unscored = 0
    for pk, positive in pop.outcomes.items():
        score = results[pk].score
        if score is None:
            unscored += 1
            continue
        scored.append((float(score), pk, positive))
        band = band_for(score, red_below=scorecard.red_below, green_from=scorecard.green_from)
        by_band[band][0] += 1
        by_band[band][1] += positive
    positives = sum(1 for _, _, p in scored if p)
    auc = rank_auc([s for s, _, _ in scored], [p for _, _, p in scored])
    if auc is not None and request.outcome.bad:
        auc = 1 - auc
    overall = _rate(positives, len(scored))
    return BacktestResult(
        scorecard_id=scorecard.pk,
        as_of=request.as_of,
        outcome=request.outcome,
        horizon_days=request.horizon_days,
        accounts=len(scored),
        positives=positives,
        auc=round(auc, 4) if auc is not None else None,
        bands=[BandRow(b, n, p, _rate(p, n)) for b, (n, p) in by_band.items()],
        deciles=_deciles(scored, overall),
        excluded={**pop.excluded, "unscored": unscored},
    )


def backtest(
    *,
    scorecard: Scorecard,
    as_of: dt.date,
    outcome: Outcome | str | Mapping[str, Any],
    horizon_days: int | None,
    accounts: QuerySet[Account] | None = None,
) -> BacktestResult:
    """Score the scorecard's accounts (of ``accounts``, default all) as of ``as_of`` against the outcome.

    Reads only; one query for the population and outcomes, one per distinct metric.
    """
    request = _request(as_of, outcome, horizon_days)
    scope = accounts_for_scorecard(scorecard, Account.objects.all() if accounts is None else accounts)
    pop = population(
        accounts=scope, as_of=request.as_of, outcome=request.outcome, horizon_days=request.horizon_days
    )
    return evaluate(scorecard=scorecard, request=request, pop=pop, scope=scope)


def compare_backtests(
    *,
    scorecard: Scorecard,
    other: Scorecard,
    as_of: dt.date,
    outcome: Outcome | str | Mapping[str, Any],
    horizon_days: int | None,
    accounts: QuerySet[Account] | None = None,
) -> tuple[BacktestResult, BacktestResult]:
    """The same backtest for two scorecards on the same accounts (those ``scorecard`` is for)."""
    request = _request(as_of, outcome, horizon_days)
    scope = accounts_for_scorecard(scorecard, Account.objects.all() if accounts is None else accounts)
    pop = population(
        accounts=scope, as_of=request.as_of, outcome=request.outcome, horizon_days=request.horizon_days
    )
    cache = MetricCache()
    return (
        evaluate(scorecard=scorecard, request=request, pop=pop, scope=scope, cache=cache),
        evaluate(scorecard=other, request=request, pop=pop, scope=scope, cache=cache),
    )


def _request(as_of: dt.date, outcome: Any, horizon_days: int | None) -> BacktestRequest:
    if isinstance(outcome, Outcome):
        outcome = outcome.as_json()
    data = {"as_of": as_of, "outcome": outcome}
    if horizon_days is not None:
        data["horizon_days"] = horizon_days
    return validate_backtest(data)
