"""The Django admin for accounts and what is known about them.

Account edits go through ``accounts.changes`` so they are audited like any other; events, their
daily rollups and audit rows are read-only here (events are immutable, rollups belong to
ingestion, audit rows are history). Lists over the big tables never count or scan them whole.
"""

import datetime as dt
from typing import Any

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connections, models, transaction
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.forms import BaseInlineFormSet
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from accounts.audit import record_change
from accounts.changes import create_account, delete_account, update_account
from accounts.governance import erase_contact
from accounts.models import (
    Account,
    AuditEntry,
    Contact,
    Event,
    EventDaily,
    SurveyResponse,
    Team,
    Ticket,
    Touchpoint,
)


def _admin_url(model: type[models.Model], name: str, *args: Any) -> str:
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{name}", args=args)


def _account_link(account: Account) -> str:
    return format_html('<a href="{}">{}</a>', _admin_url(Account, "change", account.pk), account.name)


def _excerpt(text: str, words: int = 12) -> str:
    return Truncator(text).words(words)


class LinksToAccount:
    """A list column linking a row to its account; add ``account`` to ``list_select_related``."""

    @admin.display(description="account", ordering="account__name")
    def account_link(self, obj: models.Model) -> str:
        return _account_link(obj.account)


class LargeTablePaginator(Paginator):
    """Never COUNT(*)s a big table.

    Unfiltered, the planner's row estimate stands in for the count; filtered, rows are counted
    only up to ``count_cap``, so the pager reaches at most that far (filter further to dig).
    """

    count_cap = 10_000

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not queryset.query.where:
            estimate = _estimated_row_count(queryset.model, using=queryset.db)
            if estimate > self.count_cap:
                return estimate
        # The slice makes this COUNT(*) over a LIMIT subquery: it stops at the cap.
        return queryset.order_by()[: self.count_cap].count()


def _estimated_row_count(model: type[models.Model], *, using: str) -> int:
    """PostgreSQL's estimate of a table's rows (-1 if never analysed); -1 elsewhere."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return -1
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)", [model._meta.db_table])
        row = cursor.fetchone()
    return int(row[0]) if row else -1


class RecentEventNameFilter(admin.SimpleListFilter):
    """Event names seen lately, read from the rollup: a DISTINCT over events would scan them all."""

    title = "name"
    parameter_name = "name"
    lookback = dt.timedelta(days=30)

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        since = timezone.now().date() - self.lookback
        names = (
            EventDaily.objects.filter(day__gte=since)  # eventdaily_day_name_idx
            .order_by("name")
            .values_list("name", flat=True)
            .distinct()[:100]
        )
        return [(name, name) for name in names]

    def queryset(self, request: HttpRequest, queryset: models.QuerySet) -> models.QuerySet:
        if self.value():
            return queryset.filter(name=self.value())
        return queryset


class RenewalWindowFilter(admin.SimpleListFilter):
    """Active accounts by how soon they renew (the renewals report's question)."""

    title = "renewal"
    parameter_name = "renews"
    windows = {"overdue": None, "30": 30, "90": 90, "365": 365}

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [
            ("overdue", "Overdue"),
            ("30", "Within 30 days"),
            ("90", "Within 90 days"),
            ("365", "Within a year"),
        ]

    def queryset(self, request: HttpRequest, queryset: models.QuerySet) -> models.QuerySet:
        if self.value() not in self.windows:
            return queryset
        today = timezone.now().date()
        active = queryset.filter(status=Account.Status.ACTIVE)  # account_renewal_idx
        days = self.windows[self.value()]
        if days is None:
            return active.filter(renewal_date__lt=today)
        return active.filter(renewal_date__gte=today, renewal_date__lte=today + dt.timedelta(days=days))


# --- Teams ----------------------------------------------------------------------------------


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "manager", "member_count", "account_count", "created_at")
    list_select_related = ("manager",)
    search_fields = ("name", "manager__username", "manager__email")
    autocomplete_fields = ("manager",)
    filter_horizontal = ("members",)

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        # Subqueries rather than two Counts over joins: members times accounts would multiply.
        members = (
            Team.members.through.objects.filter(team_id=OuterRef("pk"))
            .values("team_id")
            .annotate(n=Count("pk"))
            .values("n")
        )
        accounts = (
            Account.objects.filter(team_id=OuterRef("pk"))
            .order_by()
            .values("team_id")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                member_count=Coalesce(Subquery(members), 0),
                account_count=Coalesce(Subquery(accounts), 0),
            )
        )

    @admin.display(description="members", ordering="member_count")
    def member_count(self, obj: Team) -> int:
        return obj.member_count

    @admin.display(description="accounts", ordering="account_count")
    def account_count(self, obj: Team) -> str:
        url = _admin_url(Account, "changelist") + f"?team__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, obj.account_count)

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        """Audit who manages and belongs to the team: it decides who sees which accounts."""
        super().save_related(request, form, formsets, change)
        team = form.instance
        changes: dict[str, Any] = {}
        for name in form.changed_data:
            if name == "members":
                before = {user.pk for user in form.initial.get("members", [])}
                after = set(team.members.values_list("pk", flat=True))
                changes["members"] = {"added": sorted(after - before), "removed": sorted(before - after)}
            elif name == "manager":
                changes["manager"] = [form.initial.get("manager"), team.manager_id]
            else:
                changes[name] = [form.initial.get(name), str(form.cleaned_data[name])]
        if changes or not change:
            action = "team.changed" if change else "team.created"
            record_change(actor=request.user, action=action, target=team, changes=changes)

    def delete_model(self, request: HttpRequest, obj: Team) -> None:
        with transaction.atomic():
            record_change(actor=request.user, action="team.deleted", target=obj, changes={"name": obj.name})
            obj.delete()

    def delete_queryset(self, request: HttpRequest, queryset: models.QuerySet) -> None:
        with transaction.atomic():
            for team in queryset:
                self.delete_model(request, team)


# --- Accounts -------------------------------------------------------------------------------


class RecentFirstFormSet(BaseInlineFormSet):
    """Shows only the first ``limit`` related rows (in the model's order): inlines stay bounded."""

    limit = 10

    def get_queryset(self) -> models.QuerySet:
        if not hasattr(self, "_queryset"):
            self._queryset = super().get_queryset()[: self.limit]
        return self._queryset


class ContactFormSet(RecentFirstFormSet):
    limit = 25


class ContactInline(admin.TabularInline):
    model = Contact
    formset = ContactFormSet
    fields = ("name", "email", "title", "is_champion", "external_id")
    extra = 0
    show_change_link = True
    verbose_name_plural = "contacts (champions first, at most 25; see all via the links above)"

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        return super().get_queryset(request).order_by("-is_champion", "name", "id")


class ReadOnlyInline(admin.TabularInline):
    """The latest few rows, to read; they are edited on their own admin pages."""

    formset = RecentFirstFormSet
    extra = 0
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False


class TouchpointInline(ReadOnlyInline):
    model = Touchpoint
    fields = ("occurred_at", "kind", "author", "summary")
    verbose_name_plural = "recent touchpoints"

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        return super().get_queryset(request).select_related("author")


class TicketInline(ReadOnlyInline):
    model = Ticket
    fields = ("external_id", "subject", "priority", "status", "opened_at", "closed_at")
    verbose_name_plural = "recent tickets"


@admin.action(description="Export everything about it as JSON (one at a time; audited)")
def export_as_json(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset):
    """Hands over to the ops export (it reads every app); the download is written there."""
    if queryset.count() != 1:
        modeladmin.message_user(request, "Select exactly one to export.", level="warning")
        return None
    route = f"ops-export-{queryset.model._meta.model_name}"
    return HttpResponseRedirect(reverse(route, args=[queryset.get().pk]))


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    actions = [export_as_json]
    list_display = (
        "name",
        "external_id",
        "owner",
        "team",
        "segment",
        "status",
        "arr",
        "renewal_date",
        "stage",
        "health_band",
        "health_score",
    )
    list_filter = (
        "status",
        RenewalWindowFilter,
        "health_band",
        "segment",
        "stage",
        "team",
        ("owner", admin.RelatedOnlyFieldListFilter),
    )
    list_select_related = ("owner", "team")
    search_fields = ("name", "=external_id", "domain")
    search_help_text = "Name or domain contains, or the exact CRM id."
    autocomplete_fields = ("owner", "team")
    date_hierarchy = "renewal_date"
    readonly_fields = ("stage", "health_score", "health_band", "related", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "external_id", "domain", "related")}),
        ("Ownership", {"fields": ("owner", "team")}),
        (
            "Contract",
            {
                "fields": (
                    "segment",
                    "tier",
                    ("arr", "currency"),
                    ("contract_start", "renewal_date"),
                    "status",
                    ("churned_at", "churn_reason"),
                )
            },
        ),
        ("Current state", {"fields": ("stage", ("health_score", "health_band"), "created_at", "updated_at")}),
    )
    inlines = (ContactInline, TouchpointInline, TicketInline)

    @admin.display(description="see all")
    def related(self, obj: Account) -> str:
        if obj.pk is None:
            return "-"
        by_account = f"?account__id__exact={obj.pk}"
        links = [
            (_admin_url(model, "changelist") + by_account, model._meta.verbose_name_plural)
            for model in (Contact, Touchpoint, Ticket, SurveyResponse, Event, EventDaily)
        ]
        history = f"?target_type={Account._meta.label_lower}&target_id={obj.pk}"
        links.append((_admin_url(AuditEntry, "changelist") + history, "audit history"))
        return format_html_join(" · ", '<a href="{}">{}</a>', links)

    def save_model(self, request: HttpRequest, obj: Account, form, change: bool) -> None:
        """Write through accounts.changes instead of obj.save(), so the change is audited."""
        if change:
            # The form has already set the new values on obj; the stored row is the "before".
            stored = Account.objects.select_for_update().get(pk=obj.pk)
            values = {name: getattr(obj, name) for name in form.changed_data}
            saved = update_account(actor=request.user, account=stored, values=values)
        else:
            model_fields = {field.name for field in Account._meta.concrete_fields}
            values = {name: getattr(obj, name) for name in form.cleaned_data if name in model_fields}
            saved = create_account(actor=request.user, values=values)
        # The admin goes on with obj (inlines, log entry, redirect): make it the saved row,
        # including what the status rules filled in (churned_at).
        for field in Account._meta.concrete_fields:
            setattr(obj, field.attname, getattr(saved, field.attname))
        obj._state.adding = False
        obj._state.db = saved._state.db

    def delete_model(self, request: HttpRequest, obj: Account) -> None:
        delete_account(actor=request.user, account=obj)

    def delete_queryset(self, request: HttpRequest, queryset: models.QuerySet) -> None:
        with transaction.atomic():
            for account in queryset:
                delete_account(actor=request.user, account=account)

    def get_deleted_objects(self, objs, request: HttpRequest):
        """Count what goes with the accounts instead of listing it: an account can have millions
        of events, and events (read-only in this admin) would otherwise block the deletion."""
        accounts = list(objs)
        ids = [account.pk for account in accounts]
        to_delete = [
            format_html('Account: <a href="{}">{}</a>', _admin_url(Account, "change", a.pk), a)
            for a in accounts
        ]
        model_count = {Account._meta.verbose_name_plural: len(accounts)}
        protected: list[str] = []
        for relation in Account._meta.related_objects:
            if not (relation.one_to_many or relation.one_to_one):
                continue
            related = relation.related_model._base_manager.filter(**{f"{relation.field.name}__in": ids})
            if relation.on_delete is models.CASCADE:
                if count := related.count():
                    model_count[relation.related_model._meta.verbose_name_plural] = count
            elif relation.on_delete in (models.PROTECT, models.RESTRICT):
                name = relation.related_model._meta.verbose_name
                protected += [f"{name}: {row}" for row in related[:20]]
        perms_needed = set()
        if not all(self.has_delete_permission(request, account) for account in accounts):
            perms_needed.add(Account._meta.verbose_name)
        return to_delete, model_count, perms_needed, protected


# --- What is known about an account ---------------------------------------------------------


@admin.register(Contact)
class ContactAdmin(LinksToAccount, admin.ModelAdmin):
    list_display = ("__str__", "email", "title", "is_champion", "account_link", "created_at")
    list_filter = ("is_champion",)
    list_select_related = ("account",)
    search_fields = ("name", "email", "=external_id", "account__name")
    autocomplete_fields = ("account",)
    date_hierarchy = "created_at"
    actions = ["erase_personal_data", export_as_json]

    @admin.action(description="Erase personal data (keeps the account's events and scores; audited)")
    def erase_personal_data(self, request: HttpRequest, queryset) -> None:
        erased = [erase_contact(contact=contact, actor=request.user) for contact in queryset]
        self.message_user(request, f"Erased {len(erased)} contact(s); their events and scores are kept.")


@admin.register(Event)
class EventAdmin(LinksToAccount, admin.ModelAdmin):
    list_display = ("id", "occurred_at", "name", "value", "account_link", "contact", "received_at")
    # No date_hierarchy: its year/month links come from a DISTINCT over the whole table.
    list_filter = ("occurred_at", RecentEventNameFilter)
    list_select_related = ("account", "contact")
    search_fields = ("=account__external_id", "=idempotency_key")
    search_help_text = "The account's exact CRM id, or an event's idempotency key."
    # Newest received first walks the primary key; there is no index for all events by time.
    ordering = ("-id",)
    sortable_by = ()
    paginator = LargeTablePaginator
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Event | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Event | None = None) -> bool:
        return False


@admin.register(EventDaily)
class EventDailyAdmin(LinksToAccount, admin.ModelAdmin):
    list_display = ("day", "name", "count", "value_sum", "account_link")
    list_filter = ("day", RecentEventNameFilter)
    list_select_related = ("account",)
    search_fields = ("=account__external_id",)
    search_help_text = "The account's exact CRM id."
    sortable_by = ()
    paginator = LargeTablePaginator
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: EventDaily | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: EventDaily | None = None) -> bool:
        return False


@admin.register(Ticket)
class TicketAdmin(LinksToAccount, admin.ModelAdmin):
    list_display = ("external_id", "subject", "account_link", "priority", "status", "opened_at", "closed_at")
    list_filter = ("status", "priority", "opened_at")
    list_select_related = ("account",)
    search_fields = ("=external_id", "subject", "account__name")
    autocomplete_fields = ("account",)
    date_hierarchy = "opened_at"
    readonly_fields = ("updated_at",)


@admin.register(SurveyResponse)
class SurveyResponseAdmin(LinksToAccount, admin.ModelAdmin):
    list_display = ("responded_at", "kind", "score", "account_link", "contact", "comment_excerpt")
    list_filter = ("kind", "score", "responded_at")
    list_select_related = ("account", "contact")
    search_fields = ("comment", "account__name", "=external_id")
    autocomplete_fields = ("account",)
    raw_id_fields = ("contact",)
    date_hierarchy = "responded_at"

    @admin.display(description="comment")
    def comment_excerpt(self, obj: SurveyResponse) -> str:
        return _excerpt(obj.comment)


@admin.register(Touchpoint)
class TouchpointAdmin(LinksToAccount, admin.ModelAdmin):
    list_display = ("occurred_at", "kind", "account_link", "author", "summary_excerpt")
    list_filter = ("kind", "occurred_at", ("author", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("account", "author")
    search_fields = ("summary", "account__name")
    autocomplete_fields = ("account", "author")
    date_hierarchy = "occurred_at"
    readonly_fields = ("created_at",)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return {
            "author": request.user.pk,
            "occurred_at": timezone.now(),
            **super().get_changeform_initial_data(request),
        }

    @admin.display(description="summary")
    def summary_excerpt(self, obj: Touchpoint) -> str:
        return _excerpt(obj.summary)


# --- History --------------------------------------------------------------------------------


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("at", "actor", "action", "target", "changes_summary")
    list_filter = ("action", "target_type", "at")
    list_select_related = ("actor",)
    search_fields = ("=target_id", "action", "actor__username")
    date_hierarchy = "at"
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

    @admin.display(description="target", ordering="target_type")
    def target(self, obj: AuditEntry) -> str:
        label = f"{obj.target_type}:{obj.target_id}"
        app_label, _, model_name = obj.target_type.partition(".")
        try:
            url = reverse(f"admin:{app_label}_{model_name}_change", args=[obj.target_id])
        except NoReverseMatch:
            return label
        return format_html('<a href="{}">{}</a>', url, label)

    @admin.display(description="changes")
    def changes_summary(self, obj: AuditEntry) -> str:
        return _excerpt(", ".join(f"{field}: {value}" for field, value in obj.changes.items()), 20)
