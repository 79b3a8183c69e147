"""The web UI: thin views that scope every lookup, call one domain function and render.

Every account, task and alert is looked up through ``visible_accounts(user)``, so a foreign id
is a 404. Each page reads a fixed number of queries whatever the number of rows (tests pin it).
"""

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import F, OuterRef, Q, Subquery
from django.db.models.functions import Now
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from accounts.ingestion import record_touchpoints
from accounts.models import Account, Contact, Ticket
from accounts.rows import BatchInvalid
from accounts.visibility import assignable_users, is_manager, visible_accounts
from health.backtest import backtest as run_backtest
from health.backtest import compare_backtests, validate_backtest
from health.explanations import explain_health, health_history
from health.models import HealthScore, Scorecard
from health.overrides import lift_overrides, set_override
from journeys.actions import MilestoneNotFound, complete_milestone
from journeys.models import Milestone
from playbooks import work
from playbooks.models import Alert, Task
from reports.book import annotate_book, book_summary, order_book, sparklines
from reports.lifecycle import journeys_report
from reports.portfolio import portfolio_report
from reports.renewals import WINDOWS, parse_days, renewals_report
from web import charts
from web.account_page import recent_records, usage
from web.forms import BacktestForm, BookFilterForm, OverrideForm, SnoozeForm, TaskForm, TouchpointForm

PAGE_SIZE = 50
HISTORY_DAYS = 180
ACTIVITY_DAYS = 90
RECENT = 10

BOOK_COLUMNS = [
    ("name", "Account"),
    ("segment", "Segment"),
    ("arr", "ARR"),
    ("stage", "Stage"),
    ("health", "Health"),
    ("change", "30-day change"),
    ("renewal", "Renewal"),
    ("owner", "Owner"),
    ("tasks", "Open tasks"),
]


class CountedPaginator(Paginator):
    """A paginator told its count (already summed by an aggregate query): no ``COUNT(*)`` of its own."""

    def __init__(self, object_list, per_page, *, count: int, **kwargs):
        super().__init__(object_list, per_page, **kwargs)
        self._known_count = count

    @property
    def count(self) -> int:
        return self._known_count


def _query(request: HttpRequest, **changes) -> str:
    """The current query string with some parameters changed (None removes one)."""
    params = request.GET.copy()
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    return "?" + params.urlencode() if params else "?"


def _back(request: HttpRequest, default: str) -> HttpResponseRedirect:
    """Back where the form was posted from (``next``), if that is on this site."""
    target = request.POST.get("next") or ""
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = default
    return HttpResponseRedirect(target)


def _scoped_account(request: HttpRequest, pk: int) -> Account:
    """The account if the user may see it (else 404), with what its page reads beside it: the
    journey state and the current scorecard's band thresholds (same query)."""
    current = HealthScore.objects.filter(account=OuterRef("pk"), computed_at__lte=Now()).order_by(
        "-computed_at"
    )
    accounts = (
        visible_accounts(request.user)
        .select_related("owner", "team", "value", "journey_state__journey", "journey_state__stage")
        .annotate(
            scorecard_red_below=Subquery(current.values("scorecard__red_below")[:1]),
            scorecard_green_from=Subquery(current.values("scorecard__green_from")[:1]),
        )
    )
    return get_object_or_404(accounts, pk=pk)


def _require_manager(request: HttpRequest) -> None:
    if not is_manager(request.user):
        raise PermissionDenied("This page is for managers.")


# --- My book --------------------------------------------------------------------------------


def _book_condition(data: dict, *, user, today: dt.date) -> Q:
    """What My book's filters keep, as one condition on the accounts in scope."""
    condition = Q()
    if data.get("q"):
        condition &= Q(name__icontains=data["q"]) | Q(domain__icontains=data["q"])
    status = data.get("status") or ("all" if data.get("q") else "active")
    if status != "all":
        condition &= Q(status=status)
    if data.get("band"):
        bands = [b for b in data["band"] if b != "unscored"]
        in_bands = Q(health_band__in=bands)
        if "unscored" in data["band"]:
            in_bands |= Q(health_band__isnull=True)
        condition &= in_bands
    if data.get("stage"):
        condition &= Q(stage=data["stage"])
    if data.get("segment"):
        condition &= Q(segment=data["segment"])
    if data.get("rfm_segment"):
        condition &= Q(value__rfm_segment=data["rfm_segment"])
    if data.get("renewal"):
        condition &= Q(renewal_date__gte=today, renewal_date__lte=today + dt.timedelta(days=data["renewal"]))
    owner = data.get("owner")
    if owner == "me":
        condition &= Q(owner=user)
    elif owner == "none":
        condition &= Q(owner__isnull=True)
    elif owner:
        condition &= Q(owner_id=int(owner))
    return condition


@login_required
def book(request: HttpRequest) -> HttpResponse:
    """My book: the accounts in scope, filtered and sorted by the query string (bookmarkable)."""
    now = timezone.now()
    today = timezone.localdate(now)
    form = BookFilterForm(request.GET)
    form.is_valid()  # invalid fields are shown as errors and left out of the filter
    data = form.cleaned_data
    scope = visible_accounts(request.user)
    condition = _book_condition(data, user=request.user, today=today)
    filtered = scope.filter(condition)
    sort = data.get("sort") or "renewal"
    # The band totals (their counts add up to the filtered count: no COUNT(*) of its own) and the
    # filters' choices (stages, segments and owners of the whole scope) in one pass; then the few owners.
    totals, options = book_summary(scope, condition)
    page = CountedPaginator(
        order_book(annotate_book(filtered, now=now), sort),
        PAGE_SIZE,
        count=sum(t.accounts for t in totals),
    ).get_page(request.GET.get("page"))
    series = sparklines(account_ids=[a.pk for a in page], now=now)
    rows = [
        (account, charts.sparkline(series.get(account.pk, []), now=now, band=account.health_band))
        for account in page
    ]
    owners = (
        get_user_model()
        .objects.filter(pk__in={owner for _, _, owner in options if owner is not None})
        .only("id", "username", "first_name", "last_name")
        .order_by("username")
    )
    columns = []
    for key, label in BOOK_COLUMNS:
        active = sort.lstrip("-") == key
        descending = sort.startswith("-")
        next_sort = ("" if descending else "-") + key if active else key
        columns.append(
            {
                "key": key,
                "label": label,
                "url": _query(request, sort=next_sort, page=None),
                "active": active,
                "descending": descending,
                "numeric": key in ("arr", "health", "change", "tasks"),
                "phone": key in ("name", "arr", "health", "change", "renewal"),
            }
        )
    return render(
        request,
        "web/book.html",
        {
            "form": form,
            "query": data.get("q", ""),
            "page": page,
            "rows": rows,
            "columns": columns,
            "totals": totals,
            "total_accounts": sum(t.accounts for t in totals),
            "total_arr": sum((t.arr for t in totals), Decimal(0)),
            "arr_chart": charts.band_bars({t.band: t.arr for t in totals}),
            "stages": sorted({stage for stage, _, _ in options if stage}),
            "segments": sorted({segment for _, segment, _ in options if segment}),
            "owners": owners,
            "selected_bands": data.get("band") or [],
            "page_query": _query(request, page=None),
            "filtered": any(data.get(k) for k in ("q", "band", "stage", "segment", "renewal", "owner")),
        },
    )


# --- Account page ---------------------------------------------------------------------------


def _parse_iso(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def _timeline(*, tickets, surveys, touchpoints, changes, tasks, alerts) -> list[dict]:
    items = []
    for t in tickets:
        items.append(
            {
                "at": t.opened_at,
                "kind": "ticket",
                "title": f"Ticket #{t.external_id}: {t.subject}",
                "detail": f"{t.get_priority_display()} · {t.get_status_display()}",
            }
        )
    for s in surveys:
        items.append(
            {
                "at": s.responded_at,
                "kind": "survey",
                "title": f"{s.get_kind_display()} {s.score}",
                "detail": s.comment,
            }
        )
    for tp in touchpoints:
        author = tp.author.get_full_name() or tp.author.username if tp.author else "someone"
        items.append(
            {
                "at": tp.occurred_at,
                "kind": "touchpoint",
                "title": f"{tp.get_kind_display()} by {author}",
                "detail": tp.summary,
            }
        )
    for c in changes:
        items.append(
            {
                "at": c.changed_at,
                "kind": "stage",
                "title": f"Stage: {c.from_stage.name + ' → ' if c.from_stage else ''}{c.to_stage.name}",
                "detail": c.reason or c.get_cause_display(),
            }
        )
    for task in tasks:
        items.append(
            {
                "at": task.created_at,
                "kind": "task",
                "title": f"Task: {task.title}",
                "detail": f"{task.get_status_display()} · due {task.due_date:%b %-d}",
            }
        )
    for alert in alerts:
        items.append(
            {
                "at": alert.created_at,
                "kind": "alert",
                "title": f"Alert: {alert.title}",
                "detail": f"To {', '.join(alert.recipients)}. {alert.body}",
            }
        )
    return sorted(items, key=lambda item: item["at"], reverse=True)


def _one_per_firing(alerts) -> list[Alert]:
    """One alert per playbook firing (a run raises one per recipient), with ``recipients`` listed."""
    firings: dict[tuple, Alert] = {}
    for alert in alerts:
        key = (alert.run_id, alert.step_id) if alert.run_id else ("alert", alert.pk)
        first = firings.setdefault(key, alert)
        if first is alert:
            alert.recipients = []
        first.recipients.append(alert.recipient.username if alert.recipient else alert.email)
        first.unread = getattr(first, "unread", False) or alert.read_at is None
    return list(firings.values())


def _account_context(request: HttpRequest, account: Account, **forms) -> dict:
    now = timezone.now()
    today = timezone.localdate(now)
    explanation = explain_health(account=account, now=now)
    labels = {c["measure"]: c["label"] for c in explanation["components"]}
    # Biggest losses first: that is the "why" of a drop.
    changes = sorted(
        (
            {**change, "label": labels.get(change["measure"], change["measure"])}
            for change in explanation["changes"]
        ),
        key=lambda change: change["points_delta"] if change["points_delta"] is not None else 0,
    )
    thresholds = {  # annotated by _scoped_account: the scorecard of the latest score
        "red_below": getattr(account, "scorecard_red_below", None) if explanation["scorecard"] else None,
        "green_from": getattr(account, "scorecard_green_from", None) if explanation["scorecard"] else None,
    }
    history = health_history(account=account, now=now, days=HISTORY_DAYS)
    scored = [h for h in history if h["score"] is not None]
    previous = scored[-2] if len(scored) >= 2 else None
    score_chart = charts.score_chart(
        [(_parse_iso(h["computed_at"]), h["score"], h["band"]) for h in history],
        now=now,
        days=HISTORY_DAYS,
        red_below=float(thresholds["red_below"]) if thresholds["red_below"] is not None else None,
        green_from=float(thresholds["green_from"]) if thresholds["green_from"] is not None else None,
    )
    state = getattr(account, "journey_state", None)  # select_related by _scoped_account
    milestones = (
        list(
            Milestone.objects.filter(visit_id=state.visit_id)
            .select_related("definition", "completed_by")
            .order_by("due_at", "definition__order", "id")
        )
        if state
        else []
    )
    records = recent_records(account, limit=RECENT)
    stage_changes, tickets, surveys, touchpoints = (
        records.stage_changes,
        records.tickets,
        records.surveys,
        records.touchpoints,
    )
    start = today - dt.timedelta(days=ACTIVITY_DAYS - 1)
    used = usage(account, start=start, today=today, top_days=30, top=6)
    activity, top_events = used.per_day, used.top_events
    tasks = list(
        Task.objects.filter(account=account)
        .select_related("assignee")
        .order_by(F("completed_at").desc(nulls_first=True), "due_date", "id")[:20]
    )
    alerts = _one_per_firing(
        Alert.objects.filter(account=account).select_related("recipient").order_by("-created_at", "-id")[:30]
    )[:RECENT]
    contacts = list(Contact.objects.filter(account=account).order_by("-is_champion", "name", "id")[:8])
    assignees = assignable_users(request.user).order_by("username")
    override = explanation["override"]
    return {
        "account": account,
        "now": now,
        "today": today,
        "health": explanation,
        "changes": changes,
        "computed_at": _parse_iso(explanation["computed_at"]),
        "override": override,
        "override_expires": _parse_iso(override["expires_at"]) if override else None,
        "score_chart": score_chart,
        "previous": previous and {**previous, "at": _parse_iso(previous["computed_at"])},
        "score_delta": round(scored[-1]["score"] - previous["score"], 1) if previous else None,
        "state": state,
        "milestones": milestones,
        "activity_chart": charts.activity_chart(activity, start=start, end=today),
        "activity_total": sum(n for _, n in activity),
        "top_events": top_events,
        "timeline": _timeline(
            tickets=tickets,
            surveys=surveys,
            touchpoints=touchpoints,
            changes=stage_changes,
            tasks=tasks,
            alerts=alerts,
        )[:40],
        "tasks": tasks,
        "alerts": alerts,
        "contacts": contacts,
        "open_tickets": [t for t in tickets if t.status in (Ticket.Status.OPEN, Ticket.Status.PENDING)],
        "touchpoint_form": forms.get("touchpoint_form")
        or TouchpointForm(
            initial={"occurred_at": timezone.localtime(now).strftime("%Y-%m-%dT%H:%M"), "kind": "call"}
        ),
        "task_form": forms.get("task_form")
        or TaskForm(assignees=assignees, initial={"due_date": today + dt.timedelta(days=3)}),
        "override_form": forms.get("override_form")
        or OverrideForm(initial={"expires_on": today + dt.timedelta(days=30)}),
        "open_form": forms.get("open_form", ""),
        # Customer value (insights step) and what the customer said.
        "value": getattr(account, "value", None),  # select_related by _scoped_account
        "survey_comments": [s for s in surveys if s.comment][:5],
    }


@login_required
def account_detail(request: HttpRequest, pk: int) -> HttpResponse:
    account = _scoped_account(request, pk)
    return render(request, "web/account.html", _account_context(request, account))


def _invalid(request: HttpRequest, account: Account, **forms) -> HttpResponse:
    """The account page again with the form's errors (400: nothing was stored)."""
    messages.error(request, "Please correct the errors below.")
    return render(request, "web/account.html", _account_context(request, account, **forms), status=400)


@login_required
@require_POST
def milestone_complete(request: HttpRequest, pk: int, key: str) -> HttpResponse:
    account = _scoped_account(request, pk)
    try:
        milestone = complete_milestone(account=account, key=key, user=request.user, now=timezone.now())
    except MilestoneNotFound as exc:
        messages.error(request, str(exc))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"“{milestone.definition.name}” marked done.")
    return redirect(reverse("account", args=[account.pk]) + "#journey")


@login_required
@require_POST
def touchpoint_add(request: HttpRequest, pk: int) -> HttpResponse:
    account = _scoped_account(request, pk)
    form = TouchpointForm(request.POST)
    if form.is_valid():
        try:
            record_touchpoints(
                raw_rows=[
                    {
                        "account": account.pk,
                        "kind": form.cleaned_data["kind"],
                        "occurred_at": form.cleaned_data["occurred_at"].isoformat(),
                        "summary": form.cleaned_data["summary"],
                    }
                ],
                accounts=visible_accounts(request.user),
                author=request.user,
            )
        except BatchInvalid as exc:
            for error in exc.errors:
                field = error["field"] if error["field"] in form.fields else None
                form.add_error(field, error["message"])
        else:
            messages.success(request, "Touchpoint logged.")
            return redirect(reverse("account", args=[account.pk]) + "#timeline")
    return _invalid(request, account, touchpoint_form=form, open_form="touchpoint")


@login_required
@require_POST
def task_add(request: HttpRequest, pk: int) -> HttpResponse:
    account = _scoped_account(request, pk)
    form = TaskForm(request.POST, assignees=assignable_users(request.user))
    if not form.is_valid():
        return _invalid(request, account, task_form=form, open_form="task")
    work.create_task(
        actor=request.user,
        values={
            "account": account,
            "title": form.cleaned_data["title"],
            "description": form.cleaned_data["description"],
            "due_date": form.cleaned_data["due_date"],
            "priority": form.cleaned_data["priority"],
            "assignee": form.cleaned_data["assignee"] or request.user,
        },
    )
    messages.success(request, f"Task “{form.cleaned_data['title']}” added.")
    return redirect(reverse("account", args=[account.pk]) + "#tasks")


@login_required
@require_POST
def override_set(request: HttpRequest, pk: int) -> HttpResponse:
    account = _scoped_account(request, pk)
    form = OverrideForm(request.POST)
    if form.is_valid():
        expires_at = timezone.make_aware(
            dt.datetime.combine(form.cleaned_data["expires_on"], dt.time(23, 59))
        )
        try:
            set_override(
                actor=request.user,
                account=account,
                band=form.cleaned_data["band"],
                reason=form.cleaned_data["reason"],
                expires_at=expires_at,
                now=timezone.now(),
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(
                    {"expires_at": "expires_on"}.get(field, field)
                    if field in (*form.fields, "expires_at")
                    else None,
                    errors,
                )
        else:
            messages.success(
                request,
                f"Band set to {form.cleaned_data['band']} until {form.cleaned_data['expires_on']:%b %-d}.",
            )
            return redirect(reverse("account", args=[account.pk]) + "#health")
    return _invalid(request, account, override_form=form, open_form="override")


@login_required
@require_POST
def override_lift(request: HttpRequest, pk: int) -> HttpResponse:
    account = _scoped_account(request, pk)
    if lift_overrides(actor=request.user, account=account, now=timezone.now()):
        messages.success(request, "Override lifted: the band is the computed one again.")
    return redirect(reverse("account", args=[account.pk]) + "#health")


# --- Tasks and alerts -------------------------------------------------------------------------


def _scope_param(request: HttpRequest) -> str:
    return "team" if request.GET.get("scope") == "team" else "mine"


@login_required
def tasks(request: HttpRequest) -> HttpResponse:
    """Open tasks, overdue first (the earliest due date first); mine or my team's."""
    today = timezone.localdate()
    scope = _scope_param(request)
    status = "done" if request.GET.get("status") == "done" else "open"
    queryset = Task.objects.filter(account__in=visible_accounts(request.user)).select_related(
        "account", "assignee"
    )
    if scope == "mine":
        queryset = queryset.filter(assignee=request.user)
    if status == "open":
        queryset = queryset.filter(status=Task.Status.OPEN).order_by("due_date", "-priority", "id")
    else:
        queryset = queryset.exclude(status=Task.Status.OPEN).order_by(
            F("completed_at").desc(nulls_last=True), "-id"
        )
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "web/tasks.html",
        {
            "page": page,
            "scope": scope,
            "status": status,
            "today": today,
            "here": request.get_full_path(),
            "page_query": _query(request, page=None),
        },
    )


def _scoped_task(request: HttpRequest, pk: int) -> Task:
    return get_object_or_404(Task.objects.filter(account__in=visible_accounts(request.user)), pk=pk)


@login_required
@require_POST
def task_complete(request: HttpRequest, pk: int) -> HttpResponse:
    task = _scoped_task(request, pk)
    if task.status == Task.Status.OPEN:
        work.update_task(
            actor=request.user, task=task, values={"status": Task.Status.DONE}, now=timezone.now()
        )
        messages.success(request, f"Done: {task.title}")
    return _back(request, reverse("tasks"))


@login_required
@require_POST
def task_snooze(request: HttpRequest, pk: int) -> HttpResponse:
    task = _scoped_task(request, pk)
    form = SnoozeForm(request.POST)
    due = form.due_date(today=timezone.localdate()) if form.is_valid() else None
    if due is None:
        messages.error(request, "Snooze by 1 to 90 days, or pick a date.")
    else:
        work.update_task(actor=request.user, task=task, values={"due_date": due}, now=timezone.now())
        messages.success(request, f"Snoozed until {due:%a %b %-d}: {task.title}")
    return _back(request, reverse("tasks"))


@login_required
def alerts(request: HttpRequest) -> HttpResponse:
    """Alerts, unread first then newest; mine or my team's."""
    scope = _scope_param(request)
    show = "all" if request.GET.get("show") == "all" else "unread"
    queryset = Alert.objects.filter(account__in=visible_accounts(request.user)).select_related(
        "account", "recipient"
    )
    if scope == "mine":
        queryset = queryset.filter(recipient=request.user)
    if show == "unread":
        queryset = queryset.filter(read_at__isnull=True)
    queryset = queryset.order_by(F("read_at").desc(nulls_first=True), "-created_at", "-id")
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "web/alerts.html",
        {
            "page": page,
            "scope": scope,
            "show": show,
            "here": request.get_full_path(),
            "page_query": _query(request, page=None),
        },
    )


def _my_alert(request: HttpRequest, pk: int) -> Alert:
    """Reading and judging are the recipient's: a teammate's alert is visible but not theirs to judge."""
    return get_object_or_404(
        Alert.objects.filter(account__in=visible_accounts(request.user), recipient=request.user), pk=pk
    )


@login_required
@require_POST
def alert_read(request: HttpRequest, pk: int) -> HttpResponse:
    work.mark_alert_read(alert=_my_alert(request, pk), now=timezone.now())
    return _back(request, reverse("alerts"))


@login_required
@require_POST
def alert_judge(request: HttpRequest, pk: int) -> HttpResponse:
    alert = _my_alert(request, pk)
    verdict = request.POST.get("useful")
    if verdict not in ("yes", "no"):
        messages.error(request, "Say whether the alert was useful: yes or no.")
    else:
        work.judge_alert(alert=alert, useful=verdict == "yes", now=timezone.now())
        messages.success(request, "Thanks: that feedback tunes the playbook.")
    return _back(request, reverse("alerts"))


# --- Manager dashboards and journeys -----------------------------------------------------------


@login_required
def renewals(request: HttpRequest) -> HttpResponse:
    _require_manager(request)
    try:
        days = parse_days(request.GET.get("days"))
    except ValueError as exc:
        messages.error(request, f"The window (days) {exc}; showing 90 days.")
        days = 90
    report = renewals_report(accounts=visible_accounts(request.user), days=days, today=timezone.localdate())
    bands = defaultdict(Decimal, report.arr_by_band)
    # A manager's window holds thousands of accounts: the sums cover all, the table one page.
    page = CountedPaginator(report.items, PAGE_SIZE, count=report.accounts).get_page(request.GET.get("page"))
    return render(
        request,
        "web/renewals.html",
        {
            "report": report,
            "page": page,
            "page_query": _query(request, page=None),
            "windows": WINDOWS,
            "arr_chart": charts.band_bars(report.arr_by_band),
            "owner_rows": [
                (owner, charts.stacked_band_bar({b: int(v) for b, v in owner.arr_by_band.items()}))
                for owner in report.owners
            ],
            "at_risk_share": (report.arr_at_risk / report.arr_total * 100) if report.arr_total else 0,
            "yellow_arr": bands["yellow"],
            "forecast_share": (report.forecast_arr / report.arr_total * 100) if report.arr_total else 0,
        },
    )


@login_required
def portfolio(request: HttpRequest) -> HttpResponse:
    _require_manager(request)
    books = portfolio_report(accounts=visible_accounts(request.user), today=timezone.localdate())
    return render(
        request,
        "web/portfolio.html",
        {
            "books": [
                (b, charts.stacked_band_bar(b.band_counts), urlencode({"owner": b.owner_id or "none"}))
                for b in books
            ],
        },
    )


@login_required
def journeys(request: HttpRequest) -> HttpResponse:
    report = journeys_report(accounts=visible_accounts(request.user), now=timezone.now())
    return render(
        request,
        "web/journeys.html",
        {"journeys": [(j, charts.funnel([(s.name, s.accounts) for s in j.stages])) for j in report]},
    )


@login_required
def backtest(request: HttpRequest) -> HttpResponse:
    """Does a scorecard predict what happened? Scores as of a past date against the outcome after."""
    _require_manager(request)
    scorecards = Scorecard.objects.exclude(status=Scorecard.Status.RETIRED).order_by("segment", "-version")
    form = BacktestForm(request.GET or None, scorecards=scorecards)
    results, status = [], 200
    if form.is_bound:
        if form.is_valid():
            try:
                parsed = validate_backtest(form.backtest_input(), today=timezone.localdate())
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    name = field.split(".")[-1] if field.split(".")[-1] in form.fields else None
                    for error in errors:
                        form.add_error(name, f"{field}: {error}" if name is None else error)
            else:
                args = {
                    "as_of": parsed.as_of,
                    "outcome": parsed.outcome,
                    "horizon_days": parsed.horizon_days,
                    "accounts": visible_accounts(request.user),
                }
                scorecard, other = form.cleaned_data["scorecard"], form.cleaned_data["compare"]
                if other is not None and other != scorecard:
                    pair = compare_backtests(scorecard=scorecard, other=other, **args)
                    results = list(zip((scorecard, other), pair, strict=True))
                else:
                    results = [(scorecard, run_backtest(scorecard=scorecard, **args))]
        if form.errors:
            status = 400
    rows = [
        (
            scorecard,
            result,
            charts.band_bars({b.band: round((b.outcome_rate or 0) * 100) for b in result.bands}, money=False),
        )
        for scorecard, result in results
    ]
    return render(request, "web/backtest.html", {"form": form, "results": rows}, status=status)
