"""Customer lifetime value per account and per segment.

For an account, over the purchases of the window (``window_days`` before T, see ``purchases``):

- average order value (AOV) = value of the purchases ÷ their number;
- purchase frequency = purchases per year = purchases x 365 ÷ window_days;
- gross margin = the settings' margin of the account's segment (or the default);
- churn rate = the segment's share of accounts that churned in the 365 days before T, out of those
  that were customers at some point of those days (not churned before them, contract started
  before T); accounts marked churned without a churn date are left out, as unknown;
- expected lifetime = 1 ÷ churn rate in years, capped at ``max_lifetime_years`` (the cap also
  applies when a segment had no churn);
- CLV = AOV x frequency x margin x expected lifetime, rounded to cents.

An account with purchases before the window but none in it has a CLV of 0; an account that never
bought has none. Everything is computed as of any T from the events, so the health metric ``clv``
works in backtests; the pipeline stores the figures of "now" in ``AccountValue``.
"""

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, localcontext

from django.db.models import Count, F, Max, Q, QuerySet, Sum

from accounts.models import Account
from insights.configuration import value_settings
from insights.lifecycle import lifecycle_segment
from insights.models import AccountValue, RfmSegment, ValueSettings
from insights.purchases import PurchaseHistory, WindowPurchases, purchase_histories, window_purchases
from insights.rfm import rfm_segment

CHURN_LOOKBACK_DAYS = 365
CENTS = Decimal("0.01")
RATE_PLACES = Decimal("0.0001")
YEAR_DAYS = Decimal(365)


def _round(value: Decimal, places: Decimal) -> Decimal:
    return value.quantize(places, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class SegmentChurn:
    customers: int  # at risk of churning during the lookback
    churned: int
    rate: Decimal | None  # None when the segment had no customers
    lifetime_years: Decimal


def segment_churn_rates(*, as_of: dt.datetime, max_lifetime_years: Decimal) -> dict[str, SegmentChurn]:
    """Churn rate and expected lifetime per segment, measured over the 365 days before ``as_of``."""
    today = as_of.astimezone(dt.UTC).date()
    start = today - dt.timedelta(days=CHURN_LOOKBACK_DAYS)
    churned_in_period = Q(churned_at__gte=start, churned_at__lt=today)
    rows = (
        Account.objects.filter(
            Q(churned_at__isnull=True, status=Account.Status.ACTIVE) | Q(churned_at__gte=start),
            Q(contract_start__isnull=True) | Q(contract_start__lt=today),
        )
        .order_by()
        .values("segment")
        .annotate(customers=Count("pk"), churned=Count("pk", filter=churned_in_period))
        .values_list("segment", "customers", "churned")
    )
    result = {}
    for segment, customers, churned in rows:
        rate = _round(Decimal(churned) / Decimal(customers), RATE_PLACES) if customers else None
        result[segment] = SegmentChurn(customers, churned, rate, expected_lifetime(rate, max_lifetime_years))
    return result


def expected_lifetime(rate: Decimal | None, cap: Decimal) -> Decimal:
    """1 ÷ churn rate in years, to two places, at most ``cap`` (the cap when there is no churn)."""
    if not rate:
        return _round(cap, CENTS)
    return _round(min(Decimal(1) / rate, cap), CENTS)


@dataclass
class AccountFigures:
    """An account's value figures as of T (what ``AccountValue`` stores, without the history)."""

    history: PurchaseHistory | None
    window: WindowPurchases | None
    average_order_value: Decimal | None
    purchases_per_year: Decimal
    gross_margin: Decimal
    churn_rate: Decimal | None
    expected_lifetime_years: Decimal
    clv: Decimal | None
    rfm_segment: str
    lifecycle: str


def account_clv(
    window: WindowPurchases | None, *, bought: bool, margin: Decimal, lifetime: Decimal, window_days: int
) -> tuple[Decimal | None, Decimal, Decimal | None]:
    """(AOV, purchases per year, CLV) of one account."""
    if window is None:
        return None, Decimal(0), (Decimal("0.00") if bought else None)
    aov = _round(window.monetary / window.frequency, CENTS)
    per_year_exact = Decimal(window.frequency) * YEAR_DAYS / Decimal(window_days)
    # Yearly value (AOV x frequency, unrounded) x margin x lifetime, divided last and carried to
    # 80 digits: the exact value rounded half up. Divided first, a CLV on a half cent (365/90 x
    # 0.7 x 9 years) came out a cent low, the division's rounding carried into the product.
    with localcontext(prec=80):
        clv = _round(window.monetary * YEAR_DAYS * margin * lifetime / Decimal(window_days), CENTS)
    return aov, _round(per_year_exact, RATE_PLACES), clv


def account_figures(
    *, as_of: dt.datetime, settings: ValueSettings | None = None
) -> dict[int, AccountFigures]:
    """The value figures of every account as of ``as_of``: three set-based queries plus the accounts."""
    settings = settings or value_settings()
    names = list(settings.value_events)
    histories = purchase_histories(names=names, as_of=as_of, quiet_days=settings.quiet_days)
    windows = window_purchases(names=names, as_of=as_of, window_days=settings.window_days)
    churn = segment_churn_rates(as_of=as_of, max_lifetime_years=settings.max_lifetime_years)
    no_churn = SegmentChurn(0, 0, None, expected_lifetime(None, settings.max_lifetime_years))
    figures = {}
    for pk, segment in Account.objects.order_by().values_list("pk", "segment"):
        history, window = histories.get(pk), windows.get(pk)
        margin = settings.margin_for(segment)
        segment_churn = churn.get(segment, no_churn)
        aov, per_year, clv = account_clv(
            window,
            bought=history is not None,
            margin=margin,
            lifetime=segment_churn.lifetime_years,
            window_days=settings.window_days,
        )
        figures[pk] = AccountFigures(
            history=history,
            window=window,
            average_order_value=aov,
            purchases_per_year=per_year,
            gross_margin=margin,
            churn_rate=segment_churn.rate,
            expected_lifetime_years=segment_churn.lifetime_years,
            clv=clv,
            rfm_segment=rfm_segment(window, bought_before=history is not None),
            lifecycle=lifecycle_segment(history, as_of=as_of, quiet_days=settings.quiet_days),
        )
    return figures


# --- the value report (from the stored figures) ------------------------------------------------


@dataclass
class SegmentValue:
    segment: str
    accounts: int
    customers: int  # accounts that ever bought
    purchases: int  # in the window
    value: Decimal  # in the window
    gross_margin: Decimal | None
    churn_rate: Decimal | None
    expected_lifetime_years: Decimal | None
    total_clv: Decimal
    average_order_value: Decimal | None = None
    purchases_per_year: Decimal | None = None
    clv: Decimal | None = None  # the segment's CLV per customer


@dataclass
class ValueReport:
    window_days: int
    computed_at: dt.datetime | None
    total_clv: Decimal
    segments: list[SegmentValue]
    clv_by_rfm_segment: dict[str, Decimal]
    accounts_by_rfm_segment: dict[str, int]
    top_accounts: list[AccountValue] = field(default_factory=list)
    slipping_accounts: list[AccountValue] = field(default_factory=list)


SLIPPING = (RfmSegment.AT_RISK, RfmSegment.CANT_LOSE, RfmSegment.HIBERNATING)


def value_report(*, accounts: QuerySet[Account], limit: int = 20) -> ValueReport:
    """CLV per segment and per RFM segment, the most valuable accounts and the valuable ones slipping.

    Five queries whatever the number of accounts (settings, segments, RFM segments, top, slipping).
    """
    settings = value_settings()
    window_days = settings.window_days
    values = AccountValue.objects.filter(account__in=accounts.order_by().values("pk"))
    rows = (
        values.order_by()
        .values(segment=F("account__segment"))
        .annotate(
            accounts=Count("pk"),
            customers=Count("pk", filter=Q(purchases__gt=0)),
            window_purchases_sum=Sum("window_purchases"),
            window_value_sum=Sum("window_value"),
            margin=Max("gross_margin"),
            churn=Max("churn_rate"),
            lifetime=Max("expected_lifetime_years"),
            total=Sum("clv"),
            computed=Max("computed_at"),
        )
        .order_by("segment")
    )
    segments, computed_at = [], None
    for row in rows:
        segment = SegmentValue(
            segment=row["segment"],
            accounts=row["accounts"],
            customers=row["customers"],
            purchases=row["window_purchases_sum"] or 0,
            value=row["window_value_sum"] or Decimal("0.00"),
            gross_margin=row["margin"],
            churn_rate=row["churn"],
            expected_lifetime_years=row["lifetime"],
            total_clv=row["total"] or Decimal("0.00"),
        )
        if segment.purchases:
            segment.average_order_value = _round(segment.value / segment.purchases, CENTS)
        if segment.customers:
            segment.purchases_per_year = _round(
                Decimal(segment.purchases) / segment.customers * YEAR_DAYS / window_days, RATE_PLACES
            )
            yearly = segment.value / segment.customers * YEAR_DAYS / window_days
            segment.clv = _round(yearly * segment.gross_margin * segment.expected_lifetime_years, CENTS)
        segments.append(segment)
        computed_at = max(filter(None, [computed_at, row["computed"]]), default=None)
    by_rfm = (
        values.exclude(rfm_segment="")
        .order_by()
        .values("rfm_segment")
        .annotate(n=Count("pk"), clv=Sum("clv"))
    )
    clv_by_rfm = dict.fromkeys(RfmSegment.values, Decimal("0.00"))
    accounts_by_rfm = dict.fromkeys(RfmSegment.values, 0)
    for row in by_rfm:
        clv_by_rfm[row["rfm_segment"]] = row["clv"] or Decimal("0.00")
        accounts_by_rfm[row["rfm_segment"]] = row["n"]
    ranked = (
        values.filter(clv__isnull=False)
        .select_related("account", "account__owner")
        .order_by("-clv", "account_id")
    )
    return ValueReport(
        window_days=window_days,
        computed_at=computed_at,
        total_clv=sum((s.total_clv for s in segments), Decimal("0.00")),
        segments=segments,
        clv_by_rfm_segment=clv_by_rfm,
        accounts_by_rfm_segment=accounts_by_rfm,
        top_accounts=list(ranked[:limit]),
        slipping_accounts=list(ranked.filter(rfm_segment__in=SLIPPING, clv__gt=0)[:limit]),
    )
