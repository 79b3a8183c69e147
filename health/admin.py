"""The Django admin for scorecards (with inline measures), scores and overrides.

Drafts are edited here; an active or retired version is read-only (make a new draft from it with
the action), so scores keep pointing at the rules that made them. Changes are audited.
"""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from accounts.audit import record_change
from health.models import HealthScore, Measure, Override, RenewalForecast, RenewalRates, Scorecard
from health.scorecards import (
    create_scorecard,
    next_version,
    publish_scorecard,
    scorecard_config,
    validate_scorecard,
)


class MeasureForm(forms.ModelForm):
    """Checks a measure with the same validator as the API and import_config."""

    class Meta:
        model = Measure
        fields = ("key", "label", "group", "metric", "params", "weight", "mapping", "position")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        try:
            validate_scorecard(
                {
                    "measures": [
                        {
                            "key": data.get("key"),
                            "label": data.get("label"),
                            "group": data.get("group"),
                            "metric": data.get("metric"),
                            "params": data.get("params") or {},
                            "weight": str(data.get("weight")),
                            "mapping": data.get("mapping"),
                        }
                    ]
                },
                partial=True,
            )
        except ValidationError as exc:
            raise ValidationError(
                [
                    f"{field.removeprefix('measures[0].')}: {'; '.join(msgs)}"
                    for field, msgs in exc.message_dict.items()
                ]
            ) from None
        return data


class MeasureInline(admin.TabularInline):
    model = Measure
    form = MeasureForm
    extra = 0
    fields = ("position", "key", "label", "group", "metric", "params", "weight", "mapping")

    def has_add_permission(self, request: HttpRequest, obj: Scorecard | None = None) -> bool:
        return obj is None or obj.status == Scorecard.Status.DRAFT

    def has_change_permission(self, request: HttpRequest, obj: Scorecard | None = None) -> bool:
        return obj is None or obj.status == Scorecard.Status.DRAFT

    def has_delete_permission(self, request: HttpRequest, obj: Scorecard | None = None) -> bool:
        return obj is None or obj.status == Scorecard.Status.DRAFT


class ScorecardForm(forms.ModelForm):
    class Meta:
        model = Scorecard
        fields = ("name", "segment", "red_below", "green_from", "stale_after_days")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        red_below, green_from = data.get("red_below"), data.get("green_from")
        if red_below is not None and green_from is not None and red_below > green_from:
            self.add_error("red_below", f"must not be above green_from ({green_from})")
        return data


@admin.register(Scorecard)
class ScorecardAdmin(admin.ModelAdmin):
    form = ScorecardForm
    list_display = ("name", "segment_label", "version", "status", "red_below", "green_from", "measure_count")
    list_filter = ("status", "segment")
    search_fields = ("name", "segment")
    readonly_fields = ("version", "status", "derived_from", "created_by", "created_at", "published_at")
    fields = (
        "name",
        "segment",
        "red_below",
        "green_from",
        "stale_after_days",
        "version",
        "status",
        "derived_from",
        "created_by",
        "created_at",
        "published_at",
    )
    list_select_related = ("derived_from",)
    raw_id_fields = ("derived_from",)
    inlines = (MeasureInline,)
    actions = ("publish_drafts", "new_draft_from")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Scorecard]:
        return super().get_queryset(request).annotate(measure_total=Count("measures"))

    @admin.display(description="segment", ordering="segment")
    def segment_label(self, obj: Scorecard) -> str:
        return obj.segment or "(default)"

    @admin.display(description="measures", ordering="measure_total")
    def measure_count(self, obj: Scorecard) -> int:
        return obj.measure_total

    def has_change_permission(self, request: HttpRequest, obj: Scorecard | None = None) -> bool:
        if obj is not None and obj.status != Scorecard.Status.DRAFT:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Scorecard | None = None) -> bool:
        if obj is not None and obj.status != Scorecard.Status.DRAFT:
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: Scorecard, form, change: bool) -> None:
        if not change:
            obj.version = next_version(obj.segment)
            obj.status = Scorecard.Status.DRAFT
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        obj = form.instance
        record_change(
            actor=request.user,
            action="scorecard.updated" if change else "scorecard.created",
            target=obj,
            changes={
                "via": "admin",
                **{k: v for k, v in scorecard_config(obj).items() if k != "published_at"},
            },
        )

    @admin.action(description="Publish the selected drafts")
    def publish_drafts(self, request: HttpRequest, queryset: QuerySet[Scorecard]) -> None:
        for scorecard in queryset.filter(status=Scorecard.Status.DRAFT):
            try:
                publish_scorecard(actor=request.user, scorecard=scorecard, now=timezone.now())
            except ValidationError as exc:
                self.message_user(request, f"{scorecard}: {exc.messages[0]}", messages.ERROR)
            else:
                self.message_user(request, f"Published {scorecard.name} v{scorecard.version}.")

    @admin.action(description="Make a new draft from the selected versions")
    def new_draft_from(self, request: HttpRequest, queryset: QuerySet[Scorecard]) -> None:
        for scorecard in queryset.prefetch_related("measures"):
            draft = create_scorecard(
                actor=request.user,
                data=scorecard_config(scorecard),
                now=timezone.now(),
                derived_from=scorecard,
            )
            self.message_user(request, f"Draft {draft.name} v{draft.version} created.")


@admin.register(HealthScore)
class HealthScoreAdmin(admin.ModelAdmin):
    list_display = ("account", "computed_at", "score", "band", "computed_band", "scorecard")
    list_filter = ("band",)
    list_select_related = ("account", "scorecard")
    raw_id_fields = ("account", "scorecard", "override")
    date_hierarchy = "computed_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: HealthScore | None = None) -> bool:
        return False


@admin.register(Override)
class OverrideAdmin(admin.ModelAdmin):
    list_display = ("account", "band", "expires_at", "created_by", "created_at", "lifted_at")
    list_select_related = ("account", "created_by")
    raw_id_fields = ("account", "created_by", "lifted_by")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # set through the API, which audits and updates the account

    def has_change_permission(self, request: HttpRequest, obj: Override | None = None) -> bool:
        return False


@admin.register(RenewalRates)
class RenewalRatesAdmin(admin.ModelAdmin):
    """Read-only: written by ``manage.py learn_renewal_rates``."""

    list_display = ("learned_on", "lookback_days", "lead_days", "created_at")
    date_hierarchy = "learned_on"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: RenewalRates | None = None) -> bool:
        return False


@admin.register(RenewalForecast)
class RenewalForecastAdmin(admin.ModelAdmin):
    """Read-only: kept daily by ``manage.py learn_renewal_rates``, graded by ``forecast_accuracy``."""

    list_display = ("account", "renewal_date", "lead", "band", "rate", "arr", "taken_on")
    list_filter = ("lead", "band")
    list_select_related = ("account",)
    raw_id_fields = ("account",)
    date_hierarchy = "renewal_date"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: RenewalForecast | None = None) -> bool:
        return False
