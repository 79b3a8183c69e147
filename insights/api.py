"""REST API of the value and voice reports (docs/insights.md): the same figures as the pages.

Every figure is over ``visible_accounts(user)``; a bad query parameter is a 400 naming it.
"""

import datetime as dt

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.visibility import visible_accounts
from insights.churn import churn_report
from insights.clv import value_report
from insights.lifecycle import lifecycle_report
from insights.models import AccountValue, RfmSegment
from insights.periods import MAX_DAYS, MAX_MONTHS, parse_whole
from insights.rfm import rfm_report
from insights.voice import Csat, Nps, voice_report

MAX_LIMIT = 100


def _param(request: Request, name: str, *, default: int, maximum: int) -> int:
    try:
        return parse_whole(request.query_params.get(name), default=default, maximum=maximum)
    except ValueError as exc:
        raise ValidationError({name: [str(exc)]}) from exc


def _money(value) -> str | None:
    return None if value is None else str(value)


def _iso(value: dt.date | dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def account_value_json(value: AccountValue) -> dict:
    return {
        "account": value.account_id,
        "name": value.account.name,
        "segment": value.account.segment,
        "owner": value.account.owner_id,
        "clv": _money(value.clv),
        "average_order_value": _money(value.average_order_value),
        "purchases_per_year": _money(value.purchases_per_year),
        "window_purchases": value.window_purchases,
        "window_value": _money(value.window_value),
        "last_purchase_at": _iso(value.last_purchase_at),
        "recency_days": value.recency_days,
        "r_score": value.r_score,
        "f_score": value.f_score,
        "m_score": value.m_score,
        "rfm_segment": value.rfm_segment or None,
        "rfm_segment_since": _iso(value.rfm_segment_since),
        "previous_rfm_segment": value.previous_rfm_segment or None,
        "lifecycle": value.lifecycle or None,
    }


def nps_json(nps: Nps) -> dict:
    return {
        "responses": nps.responses,
        "promoters": nps.promoters,
        "passives": nps.passives,
        "detractors": nps.detractors,
        "nps": nps.score,
    }


def csat_json(csat: Csat) -> dict:
    return {"responses": csat.responses, "average": csat.average, "satisfied_share": csat.satisfied_share}


LIMIT = OpenApiParameter("limit", int, description=f"accounts listed, 1 to {MAX_LIMIT}; default 20")


class ValueReportView(APIView):
    """`GET /reports/value/`: CLV per segment and per RFM segment, top accounts, valuable ones slipping."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(parameters=[LIMIT], responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        limit = _param(request, "limit", default=20, maximum=MAX_LIMIT)
        report = value_report(accounts=visible_accounts(request.user), limit=limit)
        return Response(
            {
                "window_days": report.window_days,
                "computed_at": _iso(report.computed_at),
                "total_clv": str(report.total_clv),
                "segments": [
                    {
                        "segment": s.segment,
                        "accounts": s.accounts,
                        "customers": s.customers,
                        "purchases": s.purchases,
                        "value": str(s.value),
                        "average_order_value": _money(s.average_order_value),
                        "purchases_per_year": _money(s.purchases_per_year),
                        "gross_margin": _money(s.gross_margin),
                        "churn_rate": _money(s.churn_rate),
                        "expected_lifetime_years": _money(s.expected_lifetime_years),
                        "clv": _money(s.clv),
                        "total_clv": str(s.total_clv),
                    }
                    for s in report.segments
                ],
                "clv_by_rfm_segment": {k: str(v) for k, v in report.clv_by_rfm_segment.items()},
                "accounts_by_rfm_segment": report.accounts_by_rfm_segment,
                "top_accounts": [account_value_json(v) for v in report.top_accounts],
                "slipping_accounts": [account_value_json(v) for v in report.slipping_accounts],
            }
        )


class RfmReportView(APIView):
    """`GET /reports/rfm/?segment=at_risk`: accounts per RFM segment, the R x F grid, a segment's members."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "segment", str, enum=RfmSegment.values, description="list this segment's accounts"
            ),
            OpenApiParameter("limit", int, description=f"members listed, 1 to {MAX_LIMIT}; default 100"),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        segment = request.query_params.get("segment") or None
        if segment is not None and segment not in RfmSegment.values:
            raise ValidationError({"segment": [f"must be one of {', '.join(RfmSegment.values)}"]})
        limit = _param(request, "limit", default=MAX_LIMIT, maximum=MAX_LIMIT)
        report = rfm_report(accounts=visible_accounts(request.user), segment=segment, limit=limit)
        return Response(
            {
                "accounts_by_segment": report.accounts_by_segment,
                "clv_by_segment": {k: str(v) for k, v in report.clv_by_segment.items()},
                "grid": report.grid,
                "segment": report.segment,
                "members": [account_value_json(v) for v in report.members],
            }
        )


class LifecycleReportView(APIView):
    """`GET /reports/lifecycle/`: accounts per lifecycle segment, second-purchase rate and time."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        report = lifecycle_report(accounts=visible_accounts(request.user))
        return Response(
            {
                "counts": report.counts,
                "buyers": report.buyers,
                "second_purchasers": report.second_purchasers,
                "second_purchase_rate": (
                    round(report.second_purchase_rate, 4) if report.second_purchase_rate is not None else None
                ),
                "median_days_to_second_purchase": report.median_days_to_second,
                "average_days_to_second_purchase": report.average_days_to_second,
            }
        )


class VoiceReportView(APIView):
    """`GET /reports/voice/?months=12`: NPS and CSAT by month, NPS by segment, stage and CSM; comments."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        parameters=[OpenApiParameter("months", int, description=f"1 to {MAX_MONTHS}; default 12")],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        months = _param(request, "months", default=12, maximum=MAX_MONTHS)
        report = voice_report(
            accounts=visible_accounts(request.user), today=timezone.localdate(), months=months
        )
        return Response(
            {
                "start": report.start.isoformat(),
                "end": report.end.isoformat(),
                "nps": nps_json(report.nps),
                "csat": csat_json(report.csat),
                "nps_by_month": [{"month": m.isoformat(), **nps_json(n)} for m, n in report.nps_by_month],
                "csat_by_month": [{"month": m.isoformat(), **csat_json(c)} for m, c in report.csat_by_month],
                "nps_by_segment": {k: nps_json(v) for k, v in report.nps_by_segment.items()},
                "nps_by_stage": {k: nps_json(v) for k, v in report.nps_by_stage.items()},
                "nps_by_csm": [
                    {"owner": owner, "name": name, **nps_json(nps)} for owner, name, nps in report.nps_by_csm
                ],
                "comments": [
                    {
                        "account": c.account_id,
                        "account_name": c.account.name,
                        "kind": c.kind,
                        "score": c.score,
                        "comment": c.comment,
                        "responded_at": c.responded_at.isoformat(),
                    }
                    for c in report.comments
                ],
            }
        )


class ChurnReportView(APIView):
    """`GET /reports/churn/?days=365`: churned accounts by stage, reason, prior band, segment."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        parameters=[OpenApiParameter("days", int, description=f"1 to {MAX_DAYS}; default 365")],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        days = _param(request, "days", default=365, maximum=MAX_DAYS)
        today = timezone.localdate()
        report = churn_report(
            accounts=visible_accounts(request.user), start=today - dt.timedelta(days=days), end=today
        )
        return Response(
            {
                "start": report.start.isoformat(),
                "end": report.end.isoformat(),
                "churned": report.churned,
                "arr_lost": str(report.arr_lost),
                "by_stage": report.by_stage,
                "arr_by_stage": {k: str(v) for k, v in report.arr_by_stage.items()},
                "by_reason": report.by_reason,
                "by_band_before": report.by_band_before,
                "by_segment": report.by_segment,
                "accounts": [
                    {
                        "account": row["pk"],
                        "name": row["name"],
                        "segment": row["segment"],
                        "arr": str(row["arr"]),
                        "churned_at": row["churned_at"].isoformat(),
                        "stage": row["churn_stage"],
                        "reason": row["reason"],
                        "band_before": row["band_before"],
                    }
                    for row in report.accounts
                ],
            }
        )
