"""Admin for playbooks and the work they make: steps inline, dry run, track record, outbox."""

from django.contrib import admin, messages
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from journeys.admin import AuditedConfigAdmin
from playbooks.configuration import dry_run
from playbooks.models import Alert, EmailDelivery, Playbook, PlaybookRun, Step, Task


def account_link(obj) -> str:
    url = reverse("admin:accounts_account_change", args=[obj.account_id])
    return format_html('<a href="{}">{}</a>', url, obj.account)


account_link.short_description = "account"


class StepInline(admin.StackedInline):
    model = Step
    extra = 0
    raw_id_fields = ["assignee_user"]
    filter_horizontal = ["recipient_users"]
    fieldsets = [
        (None, {"fields": ["order", "kind", "title_template", "description_template"]}),
        ("Task", {"fields": ["due_in_days", "priority", "assignee_rule", "assignee_user"]}),
        ("Alert", {"fields": ["severity", "recipient_rule", "recipient_users", "recipient_addresses"]}),
    ]


@admin.register(Playbook)
class PlaybookAdmin(AuditedConfigAdmin):
    """Edits here are audited like those through the API (playbook.created / .changed, step.*)."""

    list_display = ["name", "trigger", "active", "cooldown_days", "fired", "tasks_done", "alerts_useful"]
    list_filter = ["active", "trigger"]
    search_fields = ["name", "description"]
    readonly_fields = ["active_since", "created_at", "updated_at"]
    inlines = [StepInline]
    actions = ["show_dry_run"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_runs=Count("runs", distinct=True),
                n_tasks=Count("tasks", distinct=True),
                n_tasks_done=Count("tasks", filter=Q(tasks__status=Task.Status.DONE), distinct=True),
                n_alerts=Count("alerts", distinct=True),
                n_useful=Count("alerts", filter=Q(alerts__useful=True), distinct=True),
            )
        )

    @admin.display(description="fired", ordering="n_runs")
    def fired(self, obj) -> int:
        return obj.n_runs

    @admin.display(description="tasks done")
    def tasks_done(self, obj) -> str:
        return f"{obj.n_tasks_done} / {obj.n_tasks}"

    @admin.display(description="alerts useful")
    def alerts_useful(self, obj) -> str:
        return f"{obj.n_useful} / {obj.n_alerts}"

    @admin.action(description="Dry run: what would these playbooks do now?")
    def show_dry_run(self, request, queryset):
        now = timezone.now()
        for playbook in queryset:
            plan = dry_run(playbook=playbook, now=now)
            sample = ", ".join(item["name"] for item in plan[:10]) + (" …" if len(plan) > 10 else "")
            messages.info(
                request,
                f"{playbook.name}: would fire on {len(plan)} account(s)" + (f": {sample}" if plan else "."),
            )


@admin.register(PlaybookRun)
class PlaybookRunAdmin(admin.ModelAdmin):
    list_display = ["playbook", account_link, "trigger_key", "fired_at"]
    list_filter = ["playbook"]
    list_select_related = ["playbook", "account"]
    raw_id_fields = ["account"]
    search_fields = ["account__name", "account__external_id", "trigger_key"]
    date_hierarchy = "fired_at"
    readonly_fields = ["playbook", "account", "trigger_key", "context", "fired_at"]


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["title", account_link, "assignee", "due_date", "priority", "status", "playbook"]
    list_filter = ["status", "priority", "playbook"]
    list_select_related = ["account", "assignee", "playbook"]
    raw_id_fields = ["account", "assignee", "run", "step", "created_by"]
    search_fields = ["title", "account__name"]
    date_hierarchy = "due_date"
    readonly_fields = ["reason", "created_at", "updated_at", "completed_at"]


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = [
        "title",
        account_link,
        "recipient",
        "email",
        "severity",
        "read_at",
        "useful",
        "created_at",
    ]
    list_filter = ["severity", "kind", "useful", "playbook"]
    list_select_related = ["account", "recipient"]
    raw_id_fields = ["account", "recipient", "run", "step", "playbook"]
    search_fields = ["title", "account__name", "email"]
    date_hierarchy = "created_at"
    readonly_fields = ["reason", "created_at"]


@admin.register(EmailDelivery)
class EmailDeliveryAdmin(admin.ModelAdmin):
    list_display = ["key", "subject", "to_email", "status", "attempts", "next_attempt_at", "sent_at"]
    list_filter = ["status"]
    search_fields = ["to_email", "subject", "key"]
    raw_id_fields = ["alert"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in EmailDelivery._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
