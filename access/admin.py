"""Admin: sign-in attempt counters (an admin can clear a locked username); tokens are knox's admin."""

from django.contrib import admin

from access.models import LoginAttempts


@admin.register(LoginAttempts)
class LoginAttemptsAdmin(admin.ModelAdmin):
    list_display = ["username", "attempts", "window_started_at"]
    search_fields = ["username"]
    readonly_fields = ["username", "attempts", "window_started_at"]

    def has_add_permission(self, request) -> bool:
        return False
