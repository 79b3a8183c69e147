"""REST API for accounts, contacts and ingestion (API.md: Accounts, Ingestion).

Views are thin: scope the queryset to the caller, check shape, call one domain function.
"""

import datetime as dt

import django_filters
from django.db.models import Q
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, permissions, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import ingestion
from accounts.api_schema import BATCH_ERRORS, ErrorsDocumentedAutoSchema
from accounts.changes import create_account, delete_account, update_account
from accounts.models import Account, Contact, Event, SurveyResponse, Ticket, Touchpoint
from accounts.parsers import StrictJSONParser
from accounts.rows import BatchInvalid, row_error
from accounts.serializers import (
    AccountSerializer,
    BatchResultSerializer,
    ContactSerializer,
    EventInSerializer,
    EventSerializer,
    SurveyResponseSerializer,
    TicketSerializer,
    TicketUpsertResultSerializer,
    TouchpointSerializer,
    account_rows,
)
from accounts.visibility import is_manager, visible_accounts

API_PARSERS = [StrictJSONParser, FormParser, MultiPartParser]


class IsManagerToCreateOrDelete(permissions.BasePermission):
    """CSMs work accounts in their scope; creating and deleting them is for managers and admins."""

    message = "Only managers and admins may create or delete accounts."

    def has_permission(self, request, view) -> bool:
        return view.action != "create" or is_manager(request.user)

    def has_object_permission(self, request, view, obj) -> bool:
        # Checked after the scoped lookup, so a foreign account stays a 404, not a 403.
        return view.action != "destroy" or is_manager(request.user)


def _rfm_segments() -> list[tuple[str, str]]:
    # The insights app sits above accounts: read lazily, for the filter only.
    from insights.models import RfmSegment

    return RfmSegment.choices


class AccountFilter(django_filters.FilterSet):
    segment = django_filters.CharFilter(lookup_expr="iexact")
    stage = django_filters.CharFilter()
    health_band = django_filters.ChoiceFilter(choices=Account.Band.choices)
    status = django_filters.ChoiceFilter(choices=Account.Status.choices)
    renewal_before = django_filters.DateFilter(field_name="renewal_date", lookup_expr="lte")
    renewal_after = django_filters.DateFilter(field_name="renewal_date", lookup_expr="gte")
    search = django_filters.CharFilter(method="filter_search", label="Name, domain or external id")
    rfm_segment = django_filters.ChoiceFilter(
        field_name="value__rfm_segment", choices=_rfm_segments, label="RFM segment (insights)"
    )

    class Meta:
        model = Account
        fields = ["segment", "owner", "team", "stage", "health_band", "status"]

    def filter_search(self, queryset, name, value):
        return queryset.filter(
            Q(name__icontains=value) | Q(domain__icontains=value) | Q(external_id__iexact=value)
        )


class InstantFilter(django_filters.DateTimeFilter):
    """A date-time compared in UTC: PostgreSQL refuses offsets beyond 15:59 (Python allows 24 h),
    so the value is converted first; one that has no UTC equivalent is a 400."""

    def filter(self, qs, value):
        if value is not None:
            try:
                value = value.astimezone(dt.UTC)
            except OverflowError:
                raise ValidationError({self.field_name: ["Date-time out of range."]}) from None
        return super().filter(qs, value)


class EventFilter(django_filters.FilterSet):
    occurred_at__gte = InstantFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_at__lt = InstantFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = Event
        fields = {"account": ["exact"], "account__external_id": ["exact"], "name": ["exact"]}


class AccountViewSet(viewsets.ModelViewSet):
    schema = ErrorsDocumentedAutoSchema()
    parser_classes = API_PARSERS
    serializer_class = AccountSerializer
    permission_classes = [permissions.IsAuthenticated, IsManagerToCreateOrDelete]
    filterset_class = AccountFilter
    ordering_fields = ["name", "arr", "renewal_date", "health_score", "created_at", "id"]
    ordering = ["name", "id"]
    http_method_names = ["get", "post", "patch", "put", "delete", "head", "options"]

    def get_queryset(self):
        return visible_accounts(self.request.user).order_by("name", "id")

    def list(self, request, *args, **kwargs):
        """The page of accounts as plain rows formatted by the serializer's fields (``AccountRows``):
        the same JSON as the serializer, without an ``Account`` and a field walk per row."""
        rows = account_rows()
        queryset = self.filter_queryset(self.get_queryset()).values(*rows.names)
        page = self.paginate_queryset(queryset)
        if page is None:
            return Response([rows(row) for row in queryset])
        return self.get_paginated_response([rows(row) for row in page])

    def perform_create(self, serializer):
        serializer.instance = create_account(actor=self.request.user, values=serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = update_account(
            actor=self.request.user, account=serializer.instance, values=serializer.validated_data
        )

    def perform_destroy(self, instance):
        delete_account(actor=self.request.user, account=instance)


class AccountByExternalIdView(generics.GenericAPIView):
    """`PUT /accounts/by-external-id/{external_id}/`: create or update an account by its CRM id.

    An existing account is updated with the fields given (200); a new one is created (201,
    managers and admins only). An account outside the caller's scope is a 404.
    """

    serializer_class = AccountSerializer
    schema = ErrorsDocumentedAutoSchema()

    lookup_field = "external_id"  # OPTIONS describes PUT from the scoped account, if any

    def get_queryset(self):
        return visible_accounts(self.request.user)

    @extend_schema(responses={200: AccountSerializer, 201: AccountSerializer})
    def put(self, request: Request, external_id: str) -> Response:
        if "\x00" in external_id:
            raise ValidationError({"external_id": ["Null characters are not allowed."]})
        data = request.data
        if not isinstance(data, dict):
            raise ValidationError({"non_field_errors": ["Expected a JSON object."]})
        if data.get("external_id") not in (None, external_id):
            raise ValidationError({"external_id": ["Must match the external_id in the path."]})
        data = {**data, "external_id": external_id}
        existing = Account.objects.filter(external_id=external_id).first()
        if existing is not None:
            account = get_object_or_404(visible_accounts(request.user), pk=existing.pk)
            serializer = self.get_serializer(account, data=data, partial=True)
            serializer.is_valid(raise_exception=True)
            account = update_account(actor=request.user, account=account, values=serializer.validated_data)
            return Response(self.get_serializer(account).data, status=status.HTTP_200_OK)
        if not is_manager(request.user):
            return Response({"detail": IsManagerToCreateOrDelete.message}, status=status.HTTP_403_FORBIDDEN)
        serializer = self.get_serializer(data=data)
        serializer.is_valid(raise_exception=True)
        account = create_account(actor=request.user, values=serializer.validated_data)
        return Response(self.get_serializer(account).data, status=status.HTTP_201_CREATED)


class ContactViewSet(viewsets.ModelViewSet):
    schema = ErrorsDocumentedAutoSchema()
    parser_classes = API_PARSERS
    serializer_class = ContactSerializer
    filterset_fields = ["account", "is_champion", "email", "external_id"]
    ordering_fields = ["name", "created_at", "id"]
    ordering = ["id"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return Contact.objects.filter(account__in=visible_accounts(self.request.user)).order_by("id")


def _as_rows(data) -> list:
    """Ingestion endpoints take one object or a list of them, at most 10,000, checked before any work."""
    rows = [data] if isinstance(data, dict) else data
    if isinstance(rows, list) and len(rows) > ingestion.MAX_EVENTS_PER_BATCH:
        raise BatchInvalid([_over_the_limit(len(rows))])
    return rows


def _over_the_limit(count: int) -> dict:
    limit = ingestion.MAX_EVENTS_PER_BATCH
    return row_error(limit, None, f"a batch holds at most {limit} rows; got {count}")


class ScopedListMixin:
    """Lists of what is known about accounts, limited to the caller's accounts."""

    model = None
    schema = ErrorsDocumentedAutoSchema()
    # Ingestion bodies are JSON (a list of rows, or one row where allowed).
    parser_classes = [StrictJSONParser]

    def get_queryset(self):
        return (
            self.model.objects.filter(account__in=visible_accounts(self.request.user))
            .select_related("account")
            .order_by(*self.model._meta.ordering)
        )


class EventView(ScopedListMixin, generics.ListAPIView):
    """`POST /events/`: an atomic batch of up to 10,000 events; `GET`: stored events."""

    model = Event
    serializer_class = EventSerializer
    filterset_class = EventFilter

    @extend_schema(
        request=EventInSerializer(many=True),
        responses={
            201: BatchResultSerializer,
            400: BATCH_ERRORS,
        },
    )
    def post(self, request: Request) -> Response:
        rows = request.data
        if not isinstance(rows, list):
            raise BatchInvalid([row_error(0, None, "expected a JSON list of events")])
        if len(rows) > ingestion.MAX_EVENTS_PER_BATCH:
            raise BatchInvalid([_over_the_limit(len(rows))])
        result = ingestion.ingest_events(raw_rows=rows, accounts=visible_accounts(request.user))
        return Response(
            {"accepted": result.accepted, "duplicates": result.duplicates}, status=status.HTTP_201_CREATED
        )


class TicketView(ScopedListMixin, generics.ListAPIView):
    """`POST /tickets/`: one ticket or a list, upserted by `external_id`; `GET`: tickets."""

    model = Ticket
    serializer_class = TicketSerializer
    filterset_fields = ["account", "status", "priority"]

    @extend_schema(
        request=TicketSerializer(many=True),
        responses={201: TicketUpsertResultSerializer, 400: BATCH_ERRORS},
    )
    def post(self, request: Request) -> Response:
        result = ingestion.upsert_tickets(
            raw_rows=_as_rows(request.data), accounts=visible_accounts(request.user)
        )
        return Response(
            {"created": result.accepted, "updated": result.updated}, status=status.HTTP_201_CREATED
        )


class SurveyView(ScopedListMixin, generics.ListAPIView):
    """`POST /surveys/`: one NPS/CSAT answer or a list; `GET`: answers."""

    model = SurveyResponse
    serializer_class = SurveyResponseSerializer
    filterset_fields = ["account", "kind"]

    def get_queryset(self):
        return super().get_queryset().select_related("contact")

    @extend_schema(
        request=SurveyResponseSerializer(many=True),
        responses={201: BatchResultSerializer, 400: BATCH_ERRORS},
    )
    def post(self, request: Request) -> Response:
        result = ingestion.record_surveys(
            raw_rows=_as_rows(request.data), accounts=visible_accounts(request.user)
        )
        return Response(
            {"accepted": result.accepted, "duplicates": result.duplicates}, status=status.HTTP_201_CREATED
        )


class TouchpointView(ScopedListMixin, generics.ListAPIView):
    """`POST /touchpoints/`: log CSM activity (one or a list), authored by the caller."""

    model = Touchpoint
    serializer_class = TouchpointSerializer
    filterset_fields = ["account", "kind", "author"]

    @extend_schema(
        request=TouchpointSerializer,
        responses={201: TouchpointSerializer(many=True), 400: BATCH_ERRORS},
    )
    def post(self, request: Request) -> Response:
        created = ingestion.record_touchpoints(
            raw_rows=_as_rows(request.data), accounts=visible_accounts(request.user), author=request.user
        )
        touchpoints = Touchpoint.objects.filter(pk__in=[t.pk for t in created]).select_related("account")
        return Response(TouchpointSerializer(touchpoints, many=True).data, status=status.HTTP_201_CREATED)
