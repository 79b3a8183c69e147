"""Renewals ahead: ARR by health band, ARR at risk and the forecast, per CSM (API.md, Reports).

The page and ``GET /api/v1/reports/renewals/`` both call ``renewals_report``: the sums are one
``GROUP BY owner, band`` in SQL whatever the number of accounts, and the window's accounts are a
lazy queryset (the page shows one page of it, the API lists it).
"""

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, QuerySet, Sum

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
    items: QuerySet[Account]  # lazy, ordered by renewal date: read a page of it, or stream it
    accounts: int
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


def _owner_name(row: dict) -> str:
    """``display_name`` of the owner from the grouped row's owner columns."""
    if row["owner_id"] is None:
        return "Unassigned"
    full = f"{row['owner__first_name']} {row['owner__last_name']}".strip()
    return full or row["owner__username"]


def _totals_by_owner_and_band(window: QuerySet[Account]) -> list[dict]:
    """Accounts and ARR per (owner, band) of the window: one ``GROUP BY``, a few rows per CSM."""
    return list(
        window.order_by()
        .values("owner_id", "owner__username", "owner__first_name", "owner__last_name", "health_band")
        .annotate(n=Count("id"), arr=Sum("arr"))
    )


def renewals_report(
    *,
    accounts: QuerySet[Account],
    days: int,
    today: dt.date,
    rates: Mapping[str, Decimal] | None = None,
) -> RenewalsReport:
    """Active accounts of ``accounts`` renewing within ``days`` from ``today`` (inclusive), with sums.

    ARR at risk is the ARR of red accounts; the forecast weighs each account's ARR by its band's
    renewal rate (summed per band first: the same total, as the rate is the band's). One query,
    and one for the rates unless given; ``items`` is read only when the caller reads it.
    """
    rates = dict(rates or renewal_rates())
    end = today + dt.timedelta(days=days)
    window = accounts.filter(status=Account.Status.ACTIVE, renewal_date__gte=today, renewal_date__lte=end)
    arr_by_band = dict.fromkeys(BANDS, Decimal("0.00"))
    accounts_by_band = dict.fromkeys(BANDS, 0)
    owners: dict[int | None, OwnerRenewals] = {}
    forecast = Decimal(0)
    for row in _totals_by_owner_and_band(window):
        band = band_key(row["health_band"])
        arr = row["arr"] or Decimal("0.00")
        weighted = arr * rates[band]
        arr_by_band[band] += arr
        accounts_by_band[band] += row["n"]
        forecast += weighted
        owner = owners.get(row["owner_id"])
        if owner is None:
            owner = owners[row["owner_id"]] = OwnerRenewals(row["owner_id"], _owner_name(row))
        owner.accounts += row["n"]
        owner.arr += arr
        owner.arr_by_band[band] += arr
        owner.forecast_arr += weighted
        if band == "red":
            owner.arr_at_risk += arr
    for owner in owners.values():
        owner.forecast_arr = owner.forecast_arr.quantize(CENTS)
    return RenewalsReport(
        window_days=days,
        start=today,
        end=end,
        rates=rates,
        items=window.select_related("owner").order_by("renewal_date", "name", "id"),
        accounts=sum(accounts_by_band.values()),
        arr_total=sum(arr_by_band.values(), Decimal(0)),
        arr_by_band=arr_by_band,
        accounts_by_band=accounts_by_band,
        arr_at_risk=arr_by_band["red"],
        forecast_arr=forecast.quantize(CENTS),
        owners=sorted(owners.values(), key=lambda o: (-o.arr, o.name)),
    )
