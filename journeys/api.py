"""REST API for journeys (API.md: Journeys): an account's journey, completing milestones, moving stages.

Views are thin: scope the account to the caller (a foreign account is a 404), check shape, call
one domain function. Domain errors are Django ``ValidationError`` (400 naming the field) and
``MilestoneNotFound`` (404 with a message), mapped by the project's exception handler.
"""

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Account
from accounts.visibility import visible_accounts
from journeys.actions import complete_milestone, move_stage
from journeys.models import AccountJourney, Milestone, StageChange


class MilestoneSerializer(serializers.ModelSerializer):
    key = serializers.CharField(source="definition.key")
    name = serializers.CharField(source="definition.name")
    stage = serializers.CharField(source="visit.to_stage.key")
    required = serializers.BooleanField(source="definition.required")
    completion = serializers.CharField(source="definition.completion")
    completed_by = serializers.CharField(source="completed_by.username", default=None)

    class Meta:
        model = Milestone
        fields = [
            "key",
            "name",
            "stage",
            "due_at",
            "completed_at",
            "status",
            "required",
            "completion",
            "completed_via",
            "completed_by",
        ]


class StageChangeSerializer(serializers.ModelSerializer):
    from_ = serializers.CharField(source="from_stage.key", default=None)
    to = serializers.CharField(source="to_stage.key")
    changed_by = serializers.CharField(source="changed_by.username", default=None)

    class Meta:
        model = StageChange
        fields = ["from_", "to", "changed_at", "reason", "cause", "changed_by"]

    def get_fields(self) -> dict:
        # "from" is a Python keyword: declared as from_, named "from" in the API and the schema.
        return {("from" if name == "from_" else name): f for name, f in super().get_fields().items()}


class JourneySerializer(serializers.Serializer):
    """`GET /accounts/{id}/journey/`: current stage, its milestones, the stage history."""

    journey = serializers.CharField(allow_null=True)
    stage = serializers.CharField(allow_null=True)
    stage_name = serializers.CharField(allow_null=True)
    entered_at = serializers.DateTimeField(allow_null=True)
    milestones = MilestoneSerializer(many=True)
    history = StageChangeSerializer(many=True)


class MoveStageSerializer(serializers.Serializer):
    stage = serializers.SlugField(max_length=64)
    reason = serializers.CharField(max_length=500)


def journey_document(account: Account) -> dict:
    """The journey of one account as API.md describes it (four queries)."""
    state = AccountJourney.objects.select_related("journey", "stage").filter(account=account).first()
    milestones = (
        Milestone.objects.filter(visit_id=state.visit_id)
        .select_related("definition", "visit__to_stage", "completed_by")
        .order_by("due_at", "definition__order", "id")
        if state
        else []
    )
    history = (
        StageChange.objects.filter(account=account)
        .select_related("from_stage", "to_stage", "changed_by")
        .order_by("changed_at", "id")
    )
    return JourneySerializer(
        {
            "journey": state.journey.key if state else None,
            "stage": state.stage.key if state else None,
            "stage_name": state.stage.name if state else None,
            "entered_at": state.entered_at if state else None,
            "milestones": milestones,
            "history": history,
        }
    ).data


class AccountJourneyView(APIView):
    """`GET /accounts/{id}/journey/`."""

    @extend_schema(responses=JourneySerializer)
    def get(self, request: Request, account_id: int) -> Response:
        account = get_object_or_404(visible_accounts(request.user), pk=account_id)
        return Response(journey_document(account))


class CompleteMilestoneView(APIView):
    """`POST /accounts/{id}/milestones/{key}/complete/`: done by the caller; repeat-safe.

    Rule-based milestones may be completed by hand too (the record says who); an unknown key,
    or one not in the account's current stage, is a 404 that lists the stage's milestones.
    """

    @extend_schema(request=None, responses=MilestoneSerializer)
    def post(self, request: Request, account_id: int, key: str) -> Response:
        account = get_object_or_404(visible_accounts(request.user), pk=account_id)
        milestone = complete_milestone(account=account, key=key, user=request.user, now=timezone.now())
        return Response(MilestoneSerializer(milestone).data)


class MoveStageView(APIView):
    """`POST /accounts/{id}/stage/` `{"stage", "reason"}`: move by hand; answers the journey."""

    @extend_schema(request=MoveStageSerializer, responses=JourneySerializer)
    def post(self, request: Request, account_id: int) -> Response:
        account = get_object_or_404(visible_accounts(request.user), pk=account_id)
        serializer = MoveStageSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        move_stage(
            account=account,
            stage_key=serializer.validated_data["stage"],
            reason=serializer.validated_data["reason"],
            user=request.user,
            now=timezone.now(),
        )
        return Response(journey_document(account))
