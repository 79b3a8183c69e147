"""REST API for the work: tasks, alerts and playbooks (API.md: Work)."""

import django_filters
from django.db.models import Q
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.visibility import is_admin, visible_accounts
from playbooks import work
from playbooks.configuration import dry_run, playbook_track_record, save_playbook
from playbooks.models import Alert, Playbook, Task
from playbooks.serializers import (
    AlertFeedbackSerializer,
    AlertSerializer,
    DryRunItemSerializer,
    PlaybookSerializer,
    TaskSerializer,
    TaskUpdateSerializer,
)

TRUE_VALUES = {"1", "true", "yes", "on"}


def is_yes(value: str) -> bool:
    """Query flags: `?mine=1` or `?mine=true` mean yes; anything else no."""
    return value.strip().lower() in TRUE_VALUES


class IsAdminToWrite(permissions.BasePermission):
    """Everyone reads playbooks; admins configure them."""

    message = "Only admins may change playbooks."

    def has_permission(self, request, view) -> bool:
        return request.method in permissions.SAFE_METHODS or is_admin(request.user)


class TaskFilter(django_filters.FilterSet):
    mine = django_filters.CharFilter(method="filter_mine", label="Assigned to me")
    overdue = django_filters.CharFilter(method="filter_overdue", label="Open and past due")
    status = django_filters.ChoiceFilter(choices=Task.Status.choices)
    priority = django_filters.ChoiceFilter(choices=Task._meta.get_field("priority").choices)

    class Meta:
        model = Task
        fields = ["status", "priority", "account", "assignee", "playbook"]

    def filter_mine(self, queryset, name, value):
        return queryset.filter(assignee=self.request.user) if is_yes(value) else queryset

    def filter_overdue(self, queryset, name, value):
        overdue = Q(status=Task.Status.OPEN, due_date__lt=timezone.localdate())
        return queryset.filter(overdue) if is_yes(value) else queryset.exclude(overdue)


class TaskViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Tasks on the accounts in the caller's scope. `?mine=1&status=open&overdue=1`."""

    filterset_class = TaskFilter
    ordering_fields = ["due_date", "priority", "created_at", "id"]
    ordering = ["due_date", "id"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        return (
            Task.objects.filter(account__in=visible_accounts(self.request.user))
            .select_related("account")
            .order_by("due_date", "id")
        )

    def get_serializer_class(self):
        return TaskUpdateSerializer if self.action in {"update", "partial_update"} else TaskSerializer

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "today": timezone.localdate()}

    def perform_create(self, serializer):
        serializer.instance = work.create_task(actor=self.request.user, values=serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = work.update_task(
            actor=self.request.user,
            task=serializer.instance,
            values=serializer.validated_data,
            now=timezone.now(),
        )


class AlertFilter(django_filters.FilterSet):
    mine = django_filters.CharFilter(method="filter_mine", label="Addressed to me")
    unread = django_filters.CharFilter(method="filter_unread", label="Not read yet")

    class Meta:
        model = Alert
        fields = ["account", "severity", "kind", "playbook"]

    def filter_mine(self, queryset, name, value):
        return queryset.filter(recipient=self.request.user) if is_yes(value) else queryset

    def filter_unread(self, queryset, name, value):
        return queryset.filter(read_at__isnull=is_yes(value))


class AlertViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Alerts on the accounts in the caller's scope. `?mine=1&unread=1`."""

    serializer_class = AlertSerializer
    filterset_class = AlertFilter
    ordering_fields = ["created_at", "severity", "id"]
    ordering = ["-created_at", "-id"]

    def get_queryset(self):
        return (
            Alert.objects.filter(account__in=visible_accounts(self.request.user))
            .select_related("account")
            .order_by("-created_at", "-id")
        )

    @extend_schema(request=None, responses=AlertSerializer)
    @action(detail=True, methods=["post"])
    def read(self, request: Request, pk=None) -> Response:
        alert = work.mark_alert_read(alert=self.get_object(), now=timezone.now())
        return Response(AlertSerializer(alert).data)

    @extend_schema(request=AlertFeedbackSerializer, responses=AlertSerializer)
    @action(detail=True, methods=["post"])
    def feedback(self, request: Request, pk=None) -> Response:
        serializer = AlertFeedbackSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        alert = work.judge_alert(
            alert=self.get_object(), useful=serializer.validated_data["useful"], now=timezone.now()
        )
        return Response(AlertSerializer(alert).data)


class PlaybookViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Playbooks with nested `steps` and their track record (`stats`); admins write."""

    serializer_class = PlaybookSerializer
    permission_classes = [permissions.IsAuthenticated, IsAdminToWrite]
    filterset_fields = ["active", "trigger"]
    ordering = ["name"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        return Playbook.objects.prefetch_related("steps__recipient_users").order_by("name")

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if self.action in {"list", "retrieve"}:
            page = (
                self.paginate_queryset(self.filter_queryset(self.get_queryset()))
                if self.action == "list"
                else None
            )
            context["stats"] = playbook_track_record(page if page is not None else [self.get_object()])
        return context

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        steps = data.pop("steps", [])
        serializer.instance = save_playbook(
            actor=self.request.user, values=data, steps=steps, now=timezone.now()
        )

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        steps = data.pop("steps", None)
        serializer.instance = save_playbook(
            actor=self.request.user,
            playbook=serializer.instance,
            values=data,
            steps=steps,
            now=timezone.now(),
        )

    @extend_schema(request=None, responses=DryRunItemSerializer(many=True))
    @action(detail=True, methods=["post"], url_path="dry-run")
    def dry_run(self, request: Request, pk=None) -> Response:
        """The accounts this playbook would fire on now and what it would create; writes nothing."""
        plan = dry_run(
            playbook=self.get_object(), now=timezone.now(), accounts=visible_accounts(request.user)
        )
        return Response(plan, status=status.HTTP_200_OK)
