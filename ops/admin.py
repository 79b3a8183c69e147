"""Step runs in the admin, read-only: they are a record, written by the steps."""

from django.contrib import admin

from accounts.models import StepRun


@admin.register(StepRun)
class StepRunAdmin(admin.ModelAdmin):
    list_display = ("step", "started_at", "duration_seconds", "outcome", "counts")
    list_filter = ("step", "outcome")
    date_hierarchy = "started_at"
    readonly_fields = ("step", "started_at", "finished_at", "duration_seconds", "outcome", "counts", "error")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
