"""REST API for health (API.md, Health): explanation, history, overrides, scorecards, recompute.

Views are thin: scope the lookup to the caller (a foreign account is a 404), check the role,
call one domain function. Bad scorecards raise Django ValidationErrors keyed by field path,
which the project's exception handler turns into 400s.
"""

from django.db import transaction
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Account
from accounts.visibility import is_admin, visible_accounts
from health import scorecards
from health.explanations import explain_health, health_history, override_json
from health.models import Scorecard
from health.overrides import lift_overrides, set_override
from health.scoring import preview_scorecard, run_recompute_step
from health.tasks import recompute_health_task

MAX_HISTORY_DAYS = 3650


class IsAdminToWrite(permissions.BasePermission):
    """Everyone signed in reads scorecards; admins configure them."""

    message = "Only admins may change scorecards."

    def has_permission(self, request, view) -> bool:
        return request.method in permissions.SAFE_METHODS or is_admin(request.user)


class IsAdmin(permissions.BasePermission):
    message = "Only admins may do this."

    def has_permission(self, request, view) -> bool:
        return is_admin(request.user)


def _account(request: Request, pk: int) -> Account:
    return get_object_or_404(visible_accounts(request.user), pk=pk)


class AccountHealthView(APIView):
    """`GET /accounts/{id}/health/`: score, band, components, missing, override, changes."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, pk: int) -> Response:
        return Response(explain_health(account=_account(request, pk), now=timezone.now()))


class AccountHealthHistoryView(APIView):
    """`GET /accounts/{id}/health/history/?days=180`: the scores of the last days, oldest first."""

    @extend_schema(
        parameters=[OpenApiParameter("days", int, description="1 to 3650; default 180")],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request, pk: int) -> Response:
        account = _account(request, pk)
        raw = request.query_params.get("days", "180")
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_HISTORY_DAYS:
            raise ValidationError({"days": [f"must be a whole number from 1 to {MAX_HISTORY_DAYS}"]})
        return Response(health_history(account=account, now=timezone.now(), days=int(raw)))


class AccountHealthOverrideView(APIView):
    """`POST /accounts/{id}/health/override/` `{"band", "reason", "expires_at"}`; `DELETE` lifts it."""

    @extend_schema(request=OpenApiTypes.OBJECT, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request, pk: int) -> Response:
        account = _account(request, pk)
        data = request.data if isinstance(request.data, dict) else {}
        expires_at = parse_datetime(str(data.get("expires_at") or ""))
        if expires_at is None:
            raise ValidationError({"expires_at": ["must be an ISO-8601 date and time with a time zone"]})
        override = set_override(
            actor=request.user,
            account=account,
            band=data.get("band"),
            reason=data.get("reason"),
            expires_at=expires_at,
            now=timezone.now(),
        )
        return Response(override_json(override), status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        lift_overrides(actor=request.user, account=_account(request, pk), now=timezone.now())
        return Response(status=status.HTTP_204_NO_CONTENT)


class ScorecardViewSet(viewsets.GenericViewSet):
    """Scorecards with nested measures; an edit of an active version makes a new draft (201)."""

    permission_classes = [permissions.IsAuthenticated, IsAdminToWrite]
    queryset = Scorecard.objects.none()
    filterset_fields = ["status", "segment"]
    ordering_fields = ["segment", "version", "id"]
    ordering = ["segment", "-version"]

    def get_queryset(self):
        return Scorecard.objects.prefetch_related("measures").order_by("segment", "-version")

    @extend_schema(operation_id="v1_scorecards_list", responses={200: OpenApiTypes.OBJECT})
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response([scorecards.scorecard_config(s) for s in page])

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def retrieve(self, request: Request, pk: int) -> Response:
        return Response(scorecards.scorecard_config(self.get_object()))

    @extend_schema(request=OpenApiTypes.OBJECT, responses={201: OpenApiTypes.OBJECT})
    def create(self, request: Request) -> Response:
        scorecard = scorecards.create_scorecard(actor=request.user, data=request.data, now=timezone.now())
        return Response(scorecards.scorecard_config(scorecard), status=status.HTTP_201_CREATED)

    @extend_schema(
        request=OpenApiTypes.OBJECT, responses={200: OpenApiTypes.OBJECT, 201: OpenApiTypes.OBJECT}
    )
    def partial_update(self, request: Request, pk: int) -> Response:
        current = self.get_object()
        scorecard = scorecards.update_scorecard(
            actor=request.user, scorecard=current, data=request.data, now=timezone.now()
        )
        created = scorecard.pk != current.pk
        return Response(
            scorecards.scorecard_config(scorecard),
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(request=None, responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"])
    def publish(self, request: Request, pk: int) -> Response:
        scorecard = scorecards.publish_scorecard(
            actor=request.user, scorecard=self.get_object(), now=timezone.now()
        )
        return Response(scorecards.scorecard_config(scorecard))

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def preview(self, request: Request, pk: int) -> Response:
        preview = preview_scorecard(
            scorecard=self.get_object(), now=timezone.now(), accounts=visible_accounts(request.user)
        )
        return Response(
            {
                "scorecard": preview.scorecard_id,
                "accounts": preview.accounts,
                "bands_now": preview.bands_now,
                "bands_with_draft": preview.bands_with_draft,
                "changes": [
                    {
                        "account": c.account_id,
                        "name": c.name,
                        "score_now": float(c.score_now) if c.score_now is not None else None,
                        "band_now": c.band_now,
                        "score_with_draft": float(c.score_with_draft)
                        if c.score_with_draft is not None
                        else None,
                        "band_with_draft": c.band_with_draft,
                    }
                    for c in preview.changes
                ],
            }
        )


class RecomputeView(APIView):
    """`POST /health/recompute/` (admins): queue a recompute; `?sync=1` runs it now and returns counts."""

    permission_classes = [permissions.IsAuthenticated, IsAdmin]

    @extend_schema(
        request=None,
        parameters=[OpenApiParameter("sync", bool)],
        responses={200: OpenApiTypes.OBJECT, 202: OpenApiTypes.OBJECT},
    )
    def post(self, request: Request) -> Response:
        if request.query_params.get("sync") in ("1", "true"):
            changes = run_recompute_step(now=timezone.now())
            if changes is None:
                return Response(
                    {"detail": "A recompute is already running."}, status=status.HTTP_409_CONFLICT
                )
            return Response(changes.counts())
        transaction.on_commit(recompute_health_task.delay)
        return Response({"queued": True}, status=status.HTTP_202_ACCEPTED)
