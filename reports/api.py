"""REST API for reports (API.md, Reports): the same figures as the renewals and portfolio pages."""

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.visibility import is_manager, visible_accounts
from health.models import RenewalRates
from health.renewal_forecast import AccuracyRow, configured_rates, forecast_accuracy, forecast_rates
from reports.portfolio import CsmBook, portfolio_report
from reports.renewals import MAX_WINDOW_DAYS, RenewalsReport, parse_days, renewals_report


class IsManager(permissions.BasePermission):
    message = "Reports are for managers and admins."

    def has_permission(self, request, view) -> bool:
        return is_manager(request.user)


ITEM_FIELDS = ("pk", "name", "renewal_date", "arr", "currency", "health_score", "health_band", "owner_id")


def renewal_item(pk, name, renewal_date, arr, currency, health_score, health_band, owner_id) -> dict:
    """One account of the window as the API shows it (from a ``values_list`` row, no model)."""
    return {
        "account": pk,
        "name": name,
        "renewal_date": renewal_date.isoformat(),
        "arr": str(arr),
        "currency": currency,
        "health_score": float(health_score) if health_score is not None else None,
        "health_band": health_band or None,
        "owner": owner_id,
    }


def renewals_json(report: RenewalsReport) -> dict:
    """The whole window (API.md lists every item): read as plain tuples, not model instances."""
    rows = report.items.select_related(None).values_list(*ITEM_FIELDS)
    return {
        "window_days": report.window_days,
        "start": report.start.isoformat(),
        "end": report.end.isoformat(),
        "accounts": report.accounts,
        "arr_total": str(report.arr_total),
        "arr_by_band": {band: str(arr) for band, arr in report.arr_by_band.items()},
        "accounts_by_band": report.accounts_by_band,
        "arr_at_risk": str(report.arr_at_risk),
        "forecast_arr": str(report.forecast_arr),
        "renewal_rates": {band: float(rate) for band, rate in report.rates.items()},
        "items": [renewal_item(*row) for row in rows],
    }


def book_json(book: CsmBook) -> dict:
    return {
        "owner": book.owner_id,
        "username": book.username or None,
        "name": book.name,
        "accounts": book.accounts,
        "arr": str(book.arr),
        "band_counts": book.band_counts,
        "arr_by_band": {band: str(arr) for band, arr in book.arr_by_band.items()},
        "open_tasks": book.open_tasks,
        "overdue_tasks": book.overdue_tasks,
    }


class RenewalsReportView(APIView):
    """`GET /reports/renewals/?days=90`: active accounts renewing within the window, ARR by band, forecast."""

    permission_classes = [permissions.IsAuthenticated, IsManager]

    @extend_schema(
        parameters=[OpenApiParameter("days", int, description=f"1 to {MAX_WINDOW_DAYS}; default 90")],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        try:
            days = parse_days(request.query_params.get("days"))
        except ValueError as exc:
            raise ValidationError({"days": [str(exc)]}) from exc
        report = renewals_report(
            accounts=visible_accounts(request.user), days=days, today=timezone.localdate()
        )
        return Response(renewals_json(report))


class PortfolioReportView(APIView):
    """`GET /reports/portfolio/`: per CSM, accounts, ARR, band counts, open and overdue tasks."""

    permission_classes = [permissions.IsAuthenticated, IsManager]

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        books = portfolio_report(accounts=visible_accounts(request.user), today=timezone.localdate())
        return Response({"csms": [book_json(book) for book in books]})


def _rate(rate: float | None) -> float | None:
    return None if rate is None else float(rate)


def accuracy_json(row: AccuracyRow) -> dict:
    return {
        "lead_days": row.lead,
        "band": row.band,
        "graded": row.graded,
        "pending": row.pending,
        "forecast_rate": _rate(row.forecast_rate),
        "actual_rate": _rate(row.actual_rate),
        "forecast_arr": str(row.forecast_arr),
        "renewed_arr": str(row.renewed_arr),
        "error_arr": str(row.error_arr),
    }


class RenewalForecastReportView(APIView):
    """`GET /reports/renewal-forecast/`: the renewal rate used per band (learned or default) and how
    close the forecasts kept 90 and 30 days before each renewal came, over the caller's accounts."""

    permission_classes = [permissions.IsAuthenticated, IsManager]

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        defaults = configured_rates()
        used = forecast_rates(defaults=defaults)
        snapshot = RenewalRates.objects.order_by("-learned_on").first()
        learned = snapshot.bands if snapshot is not None else {}
        rates = {
            band: {
                "rate": float(rate),
                "source": "learned" if (learned.get(band) or {}).get("rate") is not None else "default",
                "default": float(defaults[band]),
                "renewals": (learned.get(band) or {}).get("renewals", 0),
                "churns": (learned.get(band) or {}).get("churns", 0),
            }
            for band, rate in used.items()
        }
        return Response(
            {
                "learned_on": snapshot.learned_on.isoformat() if snapshot else None,
                "lookback_days": snapshot.lookback_days if snapshot else None,
                "lead_days": snapshot.lead_days if snapshot else None,
                "rates": rates,
                "accuracy": [accuracy_json(row) for row in forecast_accuracy(visible_accounts(request.user))],
            }
        )
