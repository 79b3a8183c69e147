from django.contrib import admin

from insights.models import AccountValue, PlaybookValueFilter, ValueSettings


@admin.register(ValueSettings)
class ValueSettingsAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "value_events",
        "default_gross_margin",
        "window_days",
        "quiet_days",
        "updated_at",
    ]

    def has_add_permission(self, request) -> bool:
        # One row, made by the migration (and recreated by insights.configuration if deleted);
        # answered without a query, as the admin asks on every page.
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AccountValue)
class AccountValueAdmin(admin.ModelAdmin):
    list_display = [
        "account",
        "clv",
        "rfm_segment",
        "r_score",
        "f_score",
        "m_score",
        "lifecycle",
        "computed_at",
    ]
    list_filter = ["rfm_segment", "lifecycle"]
    list_select_related = ["account"]
    search_fields = ["account__name", "account__external_id"]
    raw_id_fields = ["account"]

    def has_add_permission(self, request) -> bool:
        return False  # written by the insights step only

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(PlaybookValueFilter)
class PlaybookValueFilterAdmin(admin.ModelAdmin):
    list_display = ["playbook", "min_clv"]
    list_select_related = ["playbook"]
    raw_id_fields = ["playbook"]
