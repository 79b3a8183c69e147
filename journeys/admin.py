"""The Django admin for journeys: configuration is edited here (audited); state is read-only.

Journeys, stages and milestone definitions are what admins configure: every change writes an
audit row in the same transaction. Where accounts are (``AccountJourney``), their history and
their milestones are written by the evaluation step and the manual actions only, so they are
shown here, not edited (use the API or the account page to complete milestones or move stages).
"""

from typing import Any

from django.contrib import admin
from django.db import models, transaction
from django.db.models import Count
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from accounts.admin import LargeTablePaginator
from accounts.audit import record_change
from journeys.models import AccountJourney, Journey, Milestone, MilestoneDefinition, Stage, StageChange


def _account_link(obj: Any) -> str:
    url = reverse("admin:accounts_account_change", args=[obj.account_id])
    return format_html('<a href="{}">{}</a>', url, obj.account.name)


class AuditedConfigAdmin(admin.ModelAdmin):
    """Configuration changes (and those of its inlines) leave an audit row."""

    def _audit(self, request: HttpRequest, obj: models.Model, action: str, changes: dict[str, Any]) -> None:
        record_change(
            actor=request.user, action=f"{obj._meta.model_name}.{action}", target=obj, changes=changes
        )

    def save_model(self, request: HttpRequest, obj: models.Model, form, change: bool) -> None:
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            changes = {name: str(form.cleaned_data.get(name)) for name in form.changed_data}
            if changes or not change:
                self._audit(request, obj, "changed" if change else "created", changes)

    def save_formset(self, request: HttpRequest, form, formset, change: bool) -> None:
        with transaction.atomic():
            super().save_formset(request, form, formset, change)
            for obj in formset.new_objects:
                self._audit(request, obj, "created", {"key": getattr(obj, "key", "")})
            for obj, fields in formset.changed_objects:
                self._audit(request, obj, "changed", {name: str(getattr(obj, name, "")) for name in fields})
            for obj in formset.deleted_objects:
                self._audit(request, obj, "deleted", {"key": getattr(obj, "key", "")})

    def delete_model(self, request: HttpRequest, obj: models.Model) -> None:
        with transaction.atomic():
            self._audit(request, obj, "deleted", {"name": str(obj)})
            obj.delete()

    def delete_queryset(self, request: HttpRequest, queryset: models.QuerySet) -> None:
        with transaction.atomic():
            for obj in queryset:
                self.delete_model(request, obj)


class StageInline(admin.TabularInline):
    model = Stage
    fk_name = "journey"
    extra = 0
    fields = [
        "order",
        "key",
        "name",
        "entered_by",
        "days_before_renewal",
        "expected_days",
        "max_days",
        "renewed_returns_to",
        "edit_link",
    ]
    readonly_fields = ["edit_link"]
    ordering = ["order"]

    @admin.display(description="milestones")
    def edit_link(self, obj: Stage) -> str:
        if not obj.pk:
            return "-"
        url = reverse("admin:journeys_stage_change", args=[obj.pk])
        return format_html('<a href="{}">{} milestones</a>', url, obj.milestones.count())

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "renewed_returns_to":
            journey_id = request.resolver_match.kwargs.get("object_id")
            kwargs["queryset"] = (
                Stage.objects.filter(journey_id=journey_id) if journey_id else Stage.objects.none()
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Journey)
class JourneyAdmin(AuditedConfigAdmin):
    list_display = ["name", "key", "segment", "is_default", "stage_count"]
    list_filter = ["is_default"]
    search_fields = ["name", "key", "segment"]
    prepopulated_fields = {"key": ["name"]}
    inlines = [StageInline]

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        return super().get_queryset(request).annotate(stage_count=Count("stages"))

    @admin.display(description="stages", ordering="stage_count")
    def stage_count(self, obj: Journey) -> int:
        return obj.stage_count


class MilestoneDefinitionInline(admin.StackedInline):
    model = MilestoneDefinition
    extra = 0
    fields = [
        ("order", "key", "name"),
        ("due_days", "required"),
        ("completion", "event", "threshold", "window_days"),
        "description",
    ]
    ordering = ["order", "id"]


@admin.register(Stage)
class StageAdmin(AuditedConfigAdmin):
    list_display = ["name", "key", "journey", "order", "entered_by", "max_days", "milestone_count"]
    list_filter = ["journey", "entered_by"]
    list_select_related = ["journey"]
    search_fields = ["name", "key", "journey__name"]
    ordering = ["journey__name", "order"]
    inlines = [MilestoneDefinitionInline]

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        return super().get_queryset(request).annotate(milestone_count=Count("milestones"))

    @admin.display(description="milestones", ordering="milestone_count")
    def milestone_count(self, obj: Stage) -> int:
        return obj.milestone_count

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "renewed_returns_to":
            kwargs["queryset"] = Stage.objects.select_related("journey")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(MilestoneDefinition)
class MilestoneDefinitionAdmin(AuditedConfigAdmin):
    list_display = [
        "name",
        "key",
        "stage",
        "journey",
        "due_days",
        "required",
        "completion",
        "event",
        "threshold",
    ]
    list_filter = ["stage__journey", "completion", "required"]
    list_select_related = ["stage__journey"]
    search_fields = ["name", "key", "event"]
    raw_id_fields = ["stage"]

    @admin.display(ordering="stage__journey__name")
    def journey(self, obj: MilestoneDefinition) -> str:
        return obj.stage.journey.name


class ReadOnlyStateAdmin(admin.ModelAdmin):
    """Written by the evaluation step and the manual actions only; big tables are never counted."""

    paginator = LargeTablePaginator
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AccountJourney)
class AccountJourneyAdmin(ReadOnlyStateAdmin):
    list_display = ["account_link", "journey", "stage", "entered_at", "renewal_date_handled"]
    list_filter = ["journey", "stage"]
    list_select_related = ["account", "journey", "stage"]
    search_fields = ["account__name", "account__external_id"]
    raw_id_fields = ["account", "visit"]
    date_hierarchy = "entered_at"

    @admin.display(description="account", ordering="account__name")
    def account_link(self, obj: AccountJourney) -> str:
        return _account_link(obj)


@admin.register(StageChange)
class StageChangeAdmin(ReadOnlyStateAdmin):
    list_display = ["account_link", "from_stage", "to_stage", "changed_at", "cause", "reason", "changed_by"]
    list_filter = ["cause", "journey", "to_stage"]
    list_select_related = ["account", "from_stage", "to_stage", "changed_by"]
    search_fields = ["account__name", "account__external_id", "reason"]
    raw_id_fields = ["account", "changed_by"]
    date_hierarchy = "changed_at"
    ordering = ["-changed_at", "-id"]

    @admin.display(description="account", ordering="account__name")
    def account_link(self, obj: StageChange) -> str:
        return _account_link(obj)


@admin.register(Milestone)
class MilestoneAdmin(ReadOnlyStateAdmin):
    list_display = [
        "account_link",
        "definition",
        "stage",
        "status",
        "due_at",
        "completed_at",
        "completed_via",
    ]
    list_filter = ["status", "completed_via", "definition__stage__journey", "definition__stage"]
    list_select_related = ["account", "definition__stage"]
    search_fields = ["account__name", "account__external_id", "definition__key"]
    raw_id_fields = ["account", "visit", "definition", "completed_by"]
    ordering = ["-due_at", "-id"]

    @admin.display(description="account", ordering="account__name")
    def account_link(self, obj: Milestone) -> str:
        return _account_link(obj)

    @admin.display(ordering="definition__stage__order")
    def stage(self, obj: Milestone) -> str:
        return obj.definition.stage.name
