"""`POST /scorecards/{id}/backtest/` (API.md, Health): managers and admins, over the accounts they see.

A manager's backtest covers their teams' accounts (``visible_accounts``), an admin's every
account; CSMs get a 403. ``?compare=<id>`` (or a ``compare`` field) runs the same backtest, on
the same accounts, with a second scorecard, so a draft can be judged against the active one.
"""

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.visibility import is_admin, is_manager, visible_accounts
from health.backtest import backtest, compare_backtests, validate_backtest
from health.models import Scorecard
from health.suggestions import suggest_weights, validate_suggestion


class IsManagerOrAdmin(permissions.BasePermission):
    message = "Only managers and admins may run backtests."

    def has_permission(self, request, view) -> bool:
        return is_manager(request.user)


class IsAdmin(permissions.BasePermission):
    message = "Only admins may create scorecards."

    def has_permission(self, request, view) -> bool:
        return is_admin(request.user)


class ScorecardBacktestView(APIView):
    """Score the scorecard's accounts as of a past date and compare with what happened next."""

    permission_classes = [permissions.IsAuthenticated, IsManagerOrAdmin]

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        parameters=[OpenApiParameter("compare", int, description="A second scorecard's id")],
        responses={200: OpenApiTypes.OBJECT},
    )
    def post(self, request: Request, pk: int) -> Response:
        scorecard = get_object_or_404(Scorecard.objects.prefetch_related("measures"), pk=pk)
        data = request.data if isinstance(request.data, dict) else {}
        parsed = validate_backtest(data, today=timezone.now().date())
        compare = _compare_id(request.query_params.get("compare", data.get("compare")))
        accounts = visible_accounts(request.user)
        args = {
            "as_of": parsed.as_of,
            "outcome": parsed.outcome,
            "horizon_days": parsed.horizon_days,
            "accounts": accounts,
        }
        if compare is None:
            return Response(backtest(scorecard=scorecard, **args).as_json())
        other = Scorecard.objects.prefetch_related("measures").filter(pk=compare).first()
        if other is None:
            raise ValidationError({"compare": ["no such scorecard"]})
        result, compared = compare_backtests(scorecard=scorecard, other=other, **args)
        return Response({**result.as_json(), "compare": compared.as_json()})


def _compare_id(raw) -> int | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool) or not str(raw).isdigit():
        raise ValidationError({"compare": ["must be a scorecard id"]})
    return int(raw)


class ScorecardSuggestWeightsView(APIView):
    """`POST /scorecards/{id}/suggest-weights/` (admins): fitted weights saved as a new draft, both AUCs.

    Body: ``{"fit_as_of", "eval_as_of", "outcome", "horizon_days"}``; 201 with the draft.
    """

    permission_classes = [permissions.IsAuthenticated, IsAdmin]

    @extend_schema(request=OpenApiTypes.OBJECT, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request, pk: int) -> Response:
        scorecard = get_object_or_404(Scorecard.objects.prefetch_related("measures"), pk=pk)
        fit_as_of, eval_as_of, parsed = validate_suggestion(request.data, today=timezone.now().date())
        suggestion = suggest_weights(
            actor=request.user,
            scorecard=scorecard,
            fit_as_of=fit_as_of,
            eval_as_of=eval_as_of,
            outcome=parsed.outcome,
            horizon_days=parsed.horizon_days,
            now=timezone.now(),
        )
        return Response(suggestion.as_json(), status=status.HTTP_201_CREATED)
