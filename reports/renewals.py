"""Renewals ahead: ARR by health band, ARR at risk and the forecast, per CSM (API.md, Reports).

The page and ``GET /api/v1/reports/renewals/`` both call ``renewals_report``: one query whatever
the number of accounts, the sums made in Python over the window's rows (which are listed anyway).
"""

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db.models import QuerySet

from accounts.models import Account
from health.renewal_forecast import forecast_rates

BANDS = ("red", "yellow", "green", "unscored")
WINDOWS = (30, 60, 90, 180)
MAX_WINDOW_DAYS = 3650
CENTS = Decimal("0.01")


def band_key(band: str | None) -> str:
    return band or "unscored"


def parse_days(raw: str | None, *, default: int = 90) -> int:
    """A window given as text (`?days=`): a whole number of days from 1 to MAX_WINDOW_DAYS."""
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_WINDOW_DAYS:
        raise ValueError(f"must be a whole number from 1 to {MAX_WINDOW_DAYS}")
    return int(raw)


def renewal_rates() -> dict[str, Decimal]:
    """The renewal rate of each band: learned from past renewals where there are enough (health's
    newest snapshot), else settings.LIFELINE_RENEWAL_RATES. One query."""
    defaults = {band: Decimal(str(settings.LIFELINE_RENEWAL_RATES[band])) for band in BANDS}
    return forecast_rates(defaults=defaults)


@dataclass
class OwnerRenewals:
    """One CSM's share of the window (owner None: accounts nobody owns)."""

    owner_id: int | None
    name: str
    accounts: int = 0
    arr: Decimal = Decimal(0)
    arr_at_risk: Decimal = Decimal(0)
    forecast_arr: Decimal = Decimal(0)
    arr_by_band: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(BANDS, Decimal("0.00")))


@dataclass
class RenewalsReport:
    window_days: int
    start: dt.date
    end: dt.date
    rates: dict[str, Decimal]
    items: list[Account]
    arr_total: Decimal
    arr_by_band: dict[str, Decimal]
    accounts_by_band: dict[str, int]
    arr_at_risk: Decimal
    forecast_arr: Decimal
    owners: list[OwnerRenewals]


def display_name(user) -> str:
    if user is None:
        return "Unassigned"
    return user.get_full_name() or user.username


def renewals_report(
    *,
    accounts: QuerySet[Account],
    days: int,
    today: dt.date,
    rates: Mapping[str, Decimal] | None = None,
) -> RenewalsReport:
    """Active accounts of ``accounts`` renewing within ``days`` from ``today`` (inclusive), with sums.

    ARR at risk is the ARR of red accounts; the forecast weighs each account's ARR by its band's
    renewal rate. One query, and one for the rates unless given.
    """
    rates = dict(rates or renewal_rates())
    end = today + dt.timedelta(days=days)
    items = list(
        accounts.filter(status=Account.Status.ACTIVE, renewal_date__gte=today, renewal_date__lte=end)
        .select_related("owner")
        .order_by("renewal_date", "name", "id")
    )
    arr_by_band = dict.fromkeys(BANDS, Decimal("0.00"))
    accounts_by_band = dict.fromkeys(BANDS, 0)
    owners: dict[int | None, OwnerRenewals] = {}
    forecast = Decimal(0)
    for account in items:
        band = band_key(account.health_band)
        weighted = account.arr * rates[band]
        arr_by_band[band] += account.arr
        accounts_by_band[band] += 1
        forecast += weighted
        owner = owners.get(account.owner_id)
        if owner is None:
            owner = owners[account.owner_id] = OwnerRenewals(account.owner_id, display_name(account.owner))
        owner.accounts += 1
        owner.arr += account.arr
        owner.arr_by_band[band] += account.arr
        owner.forecast_arr += weighted
        if band == "red":
            owner.arr_at_risk += account.arr
    for owner in owners.values():
        owner.forecast_arr = owner.forecast_arr.quantize(CENTS)
    return RenewalsReport(
        window_days=days,
        start=today,
        end=end,
        rates=rates,
        items=items,
        arr_total=sum(arr_by_band.values(), Decimal(0)),
        arr_by_band=arr_by_band,
        accounts_by_band=accounts_by_band,
        arr_at_risk=arr_by_band["red"],
        forecast_arr=forecast.quantize(CENTS),
        owners=sorted(owners.values(), key=lambda o: (-o.arr, o.name)),
    )
