"""The learned renewal forecast: each band's renewal rate measured from what really happened (issue 9).

An outcome is a renewal or a churn in the last ``lookback_days``:

- a churn: ``churned_at`` in the window;
- a renewal: the audit log shows the account's renewal date moved forward from a date in the
  window (the CRM rolls the date on when the contract renews).

Each outcome takes the band the account had ``lead_days`` before it: its latest score at or
before that day's end, if no older than ``BAND_TOLERANCE_DAYS`` (else "unscored"). A band's rate
is renewals ÷ (renewals + churns) once it has ``min_outcomes`` of them; with fewer, the configured
default (``LIFELINE_RENEWAL_RATES``) is kept. ``snapshot_renewal_rates`` stores the result for a
day (run it daily: ``manage.py learn_renewal_rates``); ``forecast_rates`` is what the renewals
report weighs ARR with.
"""

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import reduce
from operator import or_

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet

from accounts.models import Account, AuditEntry
from health.models import HealthScore, RenewalForecast, RenewalRates

BANDS = ("red", "yellow", "green", "unscored")
BAND_TOLERANCE_DAYS = 14
CHUNK = 200  # outcomes per history query (keeps the OR of ranges small)


@dataclass(frozen=True)
class BandOutcomes:
    renewals: int
    churns: int
    rate: float | None  # None: fewer outcomes than the minimum


def _date(value) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def renewal_rollovers(*, start: dt.date, end: dt.date) -> list[tuple[int, dt.date]]:
    """(account id, renewal date) for each renewal date in ``[start, end)`` that the audit log shows was
    moved forward: the CRM rolls the date on when the contract renews. One query."""
    moves = (
        AuditEntry.objects.filter(
            target_type=Account._meta.label_lower, action="account.changed", changes__has_key="renewal_date"
        )
        .filter(at__gte=dt.datetime.combine(start - dt.timedelta(days=366), dt.time(), tzinfo=dt.UTC))
        .order_by()
        .values_list("target_id", "changes")
    )
    rollovers = []
    for target_id, changes in moves:
        pair = changes["renewal_date"]
        before, after = (
            (_date(pair[0]), _date(pair[1])) if isinstance(pair, list) and len(pair) == 2 else (None, None)
        )
        if before and after and after > before and start <= before < end and target_id.isdigit():
            rollovers.append((int(target_id), before))
    return rollovers


def past_outcomes(*, today: dt.date, lookback_days: int) -> list[tuple[int, dt.date, bool]]:
    """(account id, date, renewed) for every renewal and churn in ``[today - lookback_days, today)``."""
    start = today - dt.timedelta(days=lookback_days)
    outcomes = [
        (pk, churned_at, False)
        for pk, churned_at in Account.objects.filter(churned_at__gte=start, churned_at__lt=today)
        .order_by()
        .values_list("pk", "churned_at")
    ]
    outcomes += [(pk, day, True) for pk, day in renewal_rollovers(start=start, end=today)]
    return outcomes


def bands_before(outcomes: list[tuple[int, dt.date, bool]], *, lead_days: int) -> list[str]:
    """The band each outcome's account had ``lead_days`` before it ("unscored" when none is known)."""
    bands = []
    for first in range(0, len(outcomes), CHUNK):
        chunk = outcomes[first : first + CHUNK]
        ranges = []
        for pk, day, _ in chunk:
            end = dt.datetime.combine(day - dt.timedelta(days=lead_days - 1), dt.time(), tzinfo=dt.UTC)
            ranges.append((pk, end - dt.timedelta(days=BAND_TOLERANCE_DAYS), end))
        where = reduce(
            or_, (Q(account_id=pk, computed_at__gte=lo, computed_at__lt=hi) for pk, lo, hi in ranges)
        )
        rows = HealthScore.objects.filter(where).order_by().values_list("account_id", "computed_at", "band")
        by_account: dict[int, list[tuple[dt.datetime, dt.datetime]]] = {}
        for pk, lo, hi in ranges:
            by_account.setdefault(pk, []).append((lo, hi))
        latest: dict[tuple[int, dt.datetime], tuple[dt.datetime, str]] = {}
        for pk, computed_at, band in rows:
            for lo, hi in by_account[pk]:
                if lo <= computed_at < hi:
                    key = (pk, hi)
                    if key not in latest or latest[key][0] < computed_at:
                        latest[key] = (computed_at, band)
        bands.extend((latest.get((pk, hi), (None, ""))[1] or "unscored") for pk, _, hi in ranges)
    return bands


def learn_renewal_rates(
    *, today: dt.date, lookback_days: int = 365, lead_days: int = 90, min_outcomes: int = 20
) -> dict[str, BandOutcomes]:
    """Renewals and churns per band (as of ``lead_days`` before each) and the rate where there are enough."""
    outcomes = past_outcomes(today=today, lookback_days=lookback_days)
    counts = {band: [0, 0] for band in BANDS}
    for (_, _, renewed), band in zip(outcomes, bands_before(outcomes, lead_days=lead_days), strict=True):
        counts[band][0 if renewed else 1] += 1
    return {
        band: BandOutcomes(
            renewals,
            churns,
            round(renewals / (renewals + churns), 4) if renewals + churns >= min_outcomes else None,
        )
        for band, (renewals, churns) in counts.items()
    }


@transaction.atomic
def snapshot_renewal_rates(
    *, today: dt.date, lookback_days: int = 365, lead_days: int = 90, min_outcomes: int = 20
) -> RenewalRates:
    """Learn the rates and keep them as today's snapshot (a second run the same day replaces it)."""
    learned = learn_renewal_rates(
        today=today, lookback_days=lookback_days, lead_days=lead_days, min_outcomes=min_outcomes
    )
    snapshot, _ = RenewalRates.objects.update_or_create(
        learned_on=today,
        defaults={
            "lookback_days": lookback_days,
            "lead_days": lead_days,
            "bands": {
                b: {"renewals": o.renewals, "churns": o.churns, "rate": o.rate} for b, o in learned.items()
            },
        },
    )
    return snapshot


def forecast_rates(*, defaults: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """Each band's rate for the renewals forecast: the newest learned one, else the default. One query."""
    snapshot = RenewalRates.objects.order_by("-learned_on").first()
    learned = snapshot.bands if snapshot is not None else {}
    rates = dict(defaults)
    for band in rates:
        rate = (learned.get(band) or {}).get("rate")
        if rate is not None:
            rates[band] = Decimal(str(rate))
    return rates


# --- forecast accuracy ------------------------------------------------------------------------

RENEWAL_FORECAST_STEP = "health.renewal_forecast"  # the daily job, as recorded in StepRun
LEADS = (90, 30)  # a forecast is kept from 31 to 90 days before the renewal, and from 1 to 30 days
CHURN_GRACE_DAYS = 90  # a churn up to this long after the renewal date counts against the renewal


def configured_rates() -> dict[str, Decimal]:
    """settings.LIFELINE_RENEWAL_RATES as decimals."""
    return {band: Decimal(str(settings.LIFELINE_RENEWAL_RATES[band])) for band in BANDS}


@transaction.atomic
def snapshot_renewal_forecasts(*, today: dt.date, rates: Mapping[str, Decimal]) -> int:
    """Keep each active account's renewal forecast (band, rate, ARR) at 90 and 30 days before; returns
    how many were new. The first run to see a renewal inside a lead keeps it, so a missed day is
    caught up the next. Safe to run twice."""
    candidates = (
        Account.objects.filter(
            status=Account.Status.ACTIVE,
            renewal_date__gt=today,
            renewal_date__lte=today + dt.timedelta(days=LEADS[0]),
        )
        .order_by("pk")
        .values_list("pk", "renewal_date", "health_band", "arr")
    )
    rows = []
    for pk, renewal, band, arr in candidates:
        lead = LEADS[1] if (renewal - today).days <= LEADS[1] else LEADS[0]
        band = band or "unscored"
        rows.append(
            RenewalForecast(
                account_id=pk,
                renewal_date=renewal,
                lead=lead,
                taken_on=today,
                band=band,
                rate=rates[band],
                arr=arr,
            )
        )
    if not rows:
        return 0
    existing = set(
        RenewalForecast.objects.filter(account_id__in=[r.account_id for r in rows], taken_on__lte=today)
        .filter(renewal_date__gt=today)
        .values_list("account_id", "renewal_date", "lead")
    )
    new = [r for r in rows if (r.account_id, r.renewal_date, r.lead) not in existing]
    RenewalForecast.objects.bulk_create(new, ignore_conflicts=True)  # a concurrent run: nothing twice
    return len(new)


@dataclass(frozen=True)
class AccuracyRow:
    lead: int
    band: str  # or "all"
    graded: int  # forecasts whose renewal is now known
    pending: int
    forecast_rate: float | None  # the mean rate forecast
    actual_rate: float | None
    forecast_arr: Decimal
    renewed_arr: Decimal

    @property
    def error_arr(self) -> Decimal:
        return self.forecast_arr - self.renewed_arr


def forecast_accuracy(accounts: QuerySet[Account] | None = None) -> list[AccuracyRow]:
    """How close the kept forecasts came, per lead and band and overall; one query.

    A forecast's renewal is known once the account churned (from the forecast's day up to
    CHURN_GRACE_DAYS after the renewal date: not renewed) or its renewal date moved past the
    forecast one (renewed); until then it is pending. ``accounts`` limits it to a user's scope.
    """
    forecasts = RenewalForecast.objects.order_by()
    if accounts is not None:
        forecasts = forecasts.filter(account__in=accounts.order_by().values("pk"))
    rows = forecasts.values_list(
        "lead",
        "band",
        "rate",
        "arr",
        "renewal_date",
        "taken_on",
        "account__renewal_date",
        "account__churned_at",
    )
    groups: dict[tuple[int, str], list] = {}
    for lead, band, rate, arr, renewal, taken_on, current_renewal, churned_at in rows:
        grace = renewal + dt.timedelta(days=CHURN_GRACE_DAYS)
        if churned_at is not None and taken_on <= churned_at <= grace:
            outcome = False
        elif current_renewal is not None and current_renewal > renewal:
            outcome = True
        else:
            outcome = None
        for key in ((lead, band), (lead, "all")):
            groups.setdefault(key, []).append((rate, arr, outcome))
    order = {band: i for i, band in enumerate((*BANDS, "all"))}
    result = []
    for (lead, band), items in sorted(groups.items(), key=lambda kv: (-kv[0][0], order.get(kv[0][1], 9))):
        graded = [(rate, arr, outcome) for rate, arr, outcome in items if outcome is not None]
        n = len(graded)
        result.append(
            AccuracyRow(
                lead=lead,
                band=band,
                graded=n,
                pending=len(items) - n,
                forecast_rate=round(float(sum(r for r, _, _ in graded)) / n, 4) if n else None,
                actual_rate=round(sum(1 for *_, o in graded if o) / n, 4) if n else None,
                forecast_arr=sum((r * a for r, a, _ in graded), Decimal(0)).quantize(Decimal("0.01")),
                renewed_arr=sum((a for _, a, o in graded if o), Decimal(0)).quantize(Decimal("0.01")),
            )
        )
    return result


def run_daily_renewal_forecast(*, today: dt.date, **learning: int) -> tuple[RenewalRates, int]:
    """The daily job: learn today's rates, then keep today's forecasts with them. Safe to run twice."""
    snapshot = snapshot_renewal_rates(today=today, **learning)
    kept = snapshot_renewal_forecasts(today=today, rates=forecast_rates(defaults=configured_rates()))
    return snapshot, kept
