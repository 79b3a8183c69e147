"""The value, voice and churn pages: thin views over the insights reports, scoped to the user.

Every figure is over ``visible_accounts(user)``; each page reads a fixed number of queries
whatever the number of accounts (tests/insights/test_pages.py pins it).
"""

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from accounts.visibility import visible_accounts
from insights.churn import churn_report
from insights.clv import value_report
from insights.lifecycle import lifecycle_report
from insights.models import Lifecycle, RfmSegment
from insights.periods import MAX_DAYS, MAX_MONTHS, parse_whole
from insights.rfm import rfm_report
from insights.voice import voice_report
from web.insights_charts import month_columns, value_bars

MONTH_CHOICES = (3, 6, 12, 24)
DAY_CHOICES = (90, 180, 365, 730)
RFM_LABELS = dict(RfmSegment.choices)
LIFECYCLE_LABELS = dict(Lifecycle.choices)


def _period(request: HttpRequest, name: str, *, default: int, maximum: int) -> int:
    try:
        return parse_whole(request.GET.get(name), default=default, maximum=maximum)
    except ValueError as exc:
        messages.error(request, f"The period ({name}) {exc}; showing {default}.")
        return default


def _money_rows(values: dict, labels: dict | None = None) -> list[tuple[str, float, str]]:
    return [((labels or {}).get(k, k) or "(none)", float(v), f"{float(v):,.0f}") for k, v in values.items()]


def _count_rows(values: dict, labels: dict | None = None) -> list[tuple[str, float, str]]:
    return [((labels or {}).get(k, k) or "(none)", float(v), str(v)) for k, v in values.items()]


@login_required
def value_page(request: HttpRequest) -> HttpResponse:
    """Customer value: CLV by segment and RFM segment, the R x F grid, lifecycle, top and slipping."""
    scope = visible_accounts(request.user)
    report = value_report(accounts=scope)
    rfm = rfm_report(accounts=scope)
    lifecycle = lifecycle_report(accounts=scope)
    return render(
        request,
        "insights/value.html",
        {
            "report": report,
            "rfm": rfm,
            "lifecycle": lifecycle,
            "rfm_segments": [
                (key, RFM_LABELS[key], rfm.accounts_by_segment[key], rfm.clv_by_segment[key])
                for key in RfmSegment.values
            ],
            "grid_rows": [(r, rfm.grid[r - 1]) for r in range(5, 0, -1)],
            "clv_by_segment_chart": value_bars(
                _money_rows({s.segment: s.total_clv for s in report.segments}), label="CLV by segment"
            ),
            "clv_by_rfm_chart": value_bars(
                _money_rows(report.clv_by_rfm_segment, RFM_LABELS), label="CLV by RFM segment"
            ),
            "lifecycle_chart": value_bars(
                _count_rows(lifecycle.counts, LIFECYCLE_LABELS), label="Accounts by lifecycle"
            ),
        },
    )


@login_required
def voice_page(request: HttpRequest) -> HttpResponse:
    """Voice of the customer: NPS and CSAT over time, NPS by segment, stage and CSM, comments."""
    months = _period(request, "months", default=12, maximum=MAX_MONTHS)
    report = voice_report(accounts=visible_accounts(request.user), today=timezone.localdate(), months=months)

    def nps_rows(groups) -> list[tuple[str, float, str]]:
        return [
            (name or "(none)", nps.score, f"{nps.score:g} ({nps.responses})")
            for name, nps in groups
            if nps.score is not None
        ]

    return render(
        request,
        "insights/voice.html",
        {
            "report": report,
            "months": months,
            "month_choices": MONTH_CHOICES,
            "nps_chart": month_columns(
                [(m, n.score) for m, n in report.nps_by_month], label="NPS by month", low=-100, high=100
            ),
            "csat_chart": month_columns(
                [(m, c.average) for m, c in report.csat_by_month], label="CSAT by month", low=1, high=5
            ),
            "segment_chart": value_bars(
                nps_rows(report.nps_by_segment.items()), label="NPS by segment", low=-100, high=100
            ),
            "stage_chart": value_bars(
                nps_rows(report.nps_by_stage.items()), label="NPS by stage", low=-100, high=100
            ),
            "csm_chart": value_bars(
                nps_rows((name, nps) for _, name, nps in report.nps_by_csm),
                label="NPS by CSM",
                low=-100,
                high=100,
            ),
        },
    )


@login_required
def churn_page(request: HttpRequest) -> HttpResponse:
    """Churn analysis: where in the journey accounts are lost, why, and how healthy they looked."""
    days = _period(request, "days", default=365, maximum=MAX_DAYS)
    today = timezone.localdate()
    report = churn_report(
        accounts=visible_accounts(request.user), start=today - dt.timedelta(days=days), end=today
    )
    return render(
        request,
        "insights/churn.html",
        {
            "report": report,
            "days": days,
            "day_choices": DAY_CHOICES,
            "stage_chart": value_bars(_count_rows(report.by_stage), label="Churned accounts by stage"),
            "reason_chart": value_bars(_count_rows(report.by_reason), label="Churned accounts by reason"),
            "band_chart": value_bars(
                _count_rows(report.by_band_before), label="Band 90 days before churning"
            ),
            "segment_chart": value_bars(_count_rows(report.by_segment), label="Churned accounts by segment"),
        },
    )
