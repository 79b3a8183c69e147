"""What a playbook does when it fires: record the run once, then create tasks and raise alerts.

Everything is keyed so that firing twice on the same occurrence does nothing the second time:
runs are unique per (playbook, account, trigger key), an open task per (step, account) is
updated rather than duplicated, an alert is unique per (run, step, recipient).
"""

import datetime as dt
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.template import Context, Template, TemplateSyntaxError
from django.template.base import TextNode, VariableNode
from django.template.defaulttags import AutoEscapeControlNode
from django.utils import timezone

from accounts.bulk import copy_update, insert_rows
from accounts.lookups import any_of
from accounts.models import Account
from playbooks.assignment import AccountRef, account_refs, resolve_assignees, resolve_recipients
from playbooks.models import Alert, Playbook, PlaybookRun, Step, Task, Trigger
from playbooks.triggers import Firing


@dataclass
class PlaybookOutcome:
    playbook_id: int
    fired: int = 0
    tasks_created: int = 0
    tasks_updated: int = 0
    tasks_closed: int = 0
    alerts: int = 0
    alert_ids: tuple[int, ...] = ()


@lru_cache(maxsize=256)
def _compiled(source: str) -> Template | None:
    """An admin-written template, compiled once per process (a run renders it for every firing)."""
    try:
        return Template("{% autoescape off %}" + source + "{% endautoescape %}")
    except TemplateSyntaxError:
        return None


def render_text(source: str, context: dict[str, Any]) -> str:
    """Render an admin-written template; a broken one shows as written rather than failing the run."""
    template = _compiled(source)
    if template is None:
        return source
    try:
        return template.render(Context(context)).strip()
    except TemplateSyntaxError:
        return source


@lru_cache(maxsize=256)
def renderer(source: str) -> Callable[[dict[str, Any]], str]:
    """``render_text`` for one template, as a function of the context: the same text, less work.

    A template of text and ``{{ variables|filters }}`` only (all the default playbooks') renders
    its nodes straight into one Context, without the per-render set-up of ``Template.render``;
    any other template (tags) goes through ``render_text``.
    """
    template = _compiled(source)
    if template is None:
        return lambda context: source
    outer = template.nodelist[0] if len(template.nodelist) == 1 else None
    nodes = getattr(outer, "nodelist", ())
    if not isinstance(outer, AutoEscapeControlNode) or any(
        type(node) not in (TextNode, VariableNode) for node in nodes
    ):
        return lambda context: render_text(source, context)

    def render(context: dict[str, Any]) -> str:
        bound = Context(context, autoescape=False)
        bound.template = template  # as Template.render binds it (string_if_invalid is read from it)
        try:
            return "".join([node.render(bound) for node in nodes]).strip()
        except TemplateSyntaxError:
            return source

    return render


def reason_for(playbook: Playbook, run: PlaybookRun) -> dict[str, Any]:
    """Why a task or alert exists, stored beside it and shown with it."""
    if isinstance(run, NewRun):  # built once per run, shared by its tasks and alerts
        if run._reason is None:
            run._reason = _reason(playbook, run)
        return run._reason
    return _reason(playbook, run)


def _reason(playbook: Playbook, run: Any) -> dict[str, Any]:
    return {
        "playbook": playbook.name,
        "playbook_id": playbook.pk,
        "trigger": playbook.trigger,
        "trigger_label": Trigger(playbook.trigger).label,
        "occurrence": run.trigger_key,
        "values": run.context,
        "fired_at": run.fired_at.isoformat(),
    }


def without_cooldown(playbook: Playbook, firings: Sequence[Firing], now: dt.datetime) -> list[Firing]:
    """Drop firings on accounts that fired within the cooldown (and all but the first per account)."""
    if not playbook.cooldown_days:
        return list(firings)
    since = now - dt.timedelta(days=playbook.cooldown_days)
    cooling = set(
        PlaybookRun.objects.filter(playbook=playbook, fired_at__gt=since).values_list("account_id", flat=True)
    )
    kept, seen = [], set()
    for firing in firings:
        if firing.account_id in cooling or firing.account_id in seen:
            continue
        seen.add(firing.account_id)
        kept.append(firing)
    return kept


@dataclass(slots=True)
class NewRun:
    """A run this call recorded, as stored (its context read back as the database keeps it)."""

    pk: int
    account_id: int
    trigger_key: str
    context: dict[str, Any]
    fired_at: dt.datetime
    _reason: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def id(self) -> int:
        return self.pk


def _record_new_runs(playbook: Playbook, firings: Sequence[Firing], now: dt.datetime) -> list[NewRun]:
    """Insert a run per new occurrence; return only the runs this call created, in id order.

    One INSERT … ON CONFLICT DO NOTHING RETURNING: a run another process recorded meanwhile is
    not returned, so it is acted on once, by whoever inserted it.
    """
    keys = {f.key for f in firings}
    seen = set(
        PlaybookRun.objects.filter(any_of("trigger_key", keys), playbook=playbook).values_list(
            "account_id", "trigger_key"
        )
    )
    fresh: dict[tuple[int, str], Firing] = {}
    for firing in firings:
        if (firing.account_id, firing.key) not in seen:
            fresh.setdefault((firing.account_id, firing.key), firing)
    if not fresh:
        return []
    written = insert_rows(
        PlaybookRun,
        ["playbook", "account", "trigger_key", "context", "fired_at"],
        [(playbook.pk, f.account_id, f.key, f.context, now) for f in fresh.values()],
        ignore_conflicts=True,
        returning=["id", "account", "trigger_key", "context", "fired_at"],
    )
    return sorted((NewRun(*row) for row in written), key=lambda run: run.pk)


def _close_cleared_tasks(
    playbook: Playbook, holding: set[int], now: dt.datetime, scope: Collection[int] | None = None
) -> int:
    """Cancel this playbook's open tasks on accounts where the condition no longer holds.

    Only on the accounts the trigger was evaluated over (``scope``; None: every account): an
    account outside it may still hold the condition, nobody looked.
    """
    open_tasks = Task.objects.filter(playbook=playbook, status=Task.Status.OPEN)
    if scope is not None:
        open_tasks = open_tasks.filter(any_of("account_id", sorted(scope)))
    cleared = [
        pk
        for pk, account_id in open_tasks.order_by().values_list("pk", "account_id")
        if account_id not in holding
    ]
    return Task.objects.filter(any_of("pk", cleared), status=Task.Status.OPEN).update(
        status=Task.Status.CANCELLED, completed_at=now, updated_at=now
    )


def template_context(account: Account, playbook: Playbook, run: PlaybookRun) -> dict[str, Any]:
    return {
        "account": account,
        "playbook": playbook,
        "values": run.context,
        "reason": reason_for(playbook, run),
    }


def _apply_task_step(
    step: Step,
    runs: Sequence[NewRun],
    refs: dict[int, AccountRef],
    accounts: dict[int, Account],
    now: dt.datetime,
) -> tuple[int, int]:
    """Create the step's task per account, or update the one still open; return (created, updated)."""
    latest_run = {run.account_id: run for run in runs}  # several occurrences at once: the last wins
    assignees = resolve_assignees(step=step, accounts=[refs[a] for a in latest_run])
    open_tasks = {
        task.account_id: task
        for task in Task.objects.filter(any_of("account_id", latest_run), step=step, status=Task.Status.OPEN)
    }
    due = now.date() + dt.timedelta(days=step.due_in_days)
    title_of, description_of = renderer(step.title_template), renderer(step.description_template)
    playbook = step.playbook
    created_at = timezone.now()
    to_create, to_update = [], []
    for account_id, run in latest_run.items():
        context = template_context(accounts[account_id], playbook, run)
        title = title_of(context)[:300]
        description = description_of(context)
        task = open_tasks.get(account_id)
        if task is not None:
            task.title, task.description, task.run_id, task.reason = (
                title,
                description,
                run.pk,
                reason_for(playbook, run),
            )
            task.due_date, task.updated_at = min(task.due_date, due), now
            to_update.append(task)
            continue
        to_create.append(
            (
                account_id,
                title,
                description,
                assignees.get(account_id),
                due,
                step.priority,
                Task.Status.OPEN.value,
                playbook.pk,
                step.pk,
                run.pk,
                reason_for(playbook, run),
                created_at,
                created_at,
            )
        )
    insert_rows(
        Task,
        [
            "account",
            "title",
            "description",
            "assignee",
            "due_date",
            "priority",
            "status",
            "playbook",
            "step",
            "run",
            "reason",
            "created_at",
            "updated_at",
        ],
        to_create,
        ignore_conflicts=True,
    )
    copy_update(Task, to_update, ["title", "description", "run", "reason", "due_date", "updated_at"])
    return len(to_create), len(to_update)


def _apply_alert_step(
    step: Step,
    runs: Sequence[NewRun],
    refs: dict[int, AccountRef],
    accounts: dict[int, Account],
    now: dt.datetime,
) -> list[int]:
    """Raise the step's alert for each recipient of each run; return the ids of the alerts."""
    recipients = resolve_recipients(step=step, accounts=[refs[r.account_id] for r in runs])
    emails = dict(get_user_model().objects.filter(is_active=True).values_list("id", "email"))
    title_of, body_of = renderer(step.title_template), renderer(step.description_template)
    playbook = step.playbook
    created_at = timezone.now()
    alerts = []
    for run in runs:
        context = template_context(accounts[run.account_id], playbook, run)
        title = title_of(context)[:300]
        body = body_of(context)
        for user_id, address in recipients.get(run.account_id, []):
            if user_id is not None and user_id not in emails:
                continue  # inactive user
            alerts.append(
                (
                    run.account_id,
                    user_id,
                    address,
                    f"user:{user_id}" if user_id else f"email:{address}",
                    playbook.trigger,
                    title,
                    body,
                    step.severity,
                    playbook.pk,
                    run.pk,
                    step.pk,
                    reason_for(playbook, run),
                    created_at,
                )
            )
    insert_rows(
        Alert,
        [
            "account",
            "recipient",
            "email",
            "recipient_key",
            "kind",
            "title",
            "body",
            "severity",
            "playbook",
            "run",
            "step",
            "reason",
            "created_at",
        ],
        alerts,
        ignore_conflicts=True,
    )
    raised = Alert.objects.filter(any_of("run_id", [r.pk for r in runs]), step=step)
    return list(raised.values_list("pk", flat=True))


def _accounts_by_id(ids: Sequence[int]) -> dict[int, Account]:
    """``in_bulk`` with the ids as one array parameter (a day's firings at 1M accounts are many)."""
    return {account.pk: account for account in Account.objects.filter(any_of("pk", ids)).order_by()}


@transaction.atomic
def fire_playbook(
    *,
    playbook: Playbook,
    firings: Sequence[Firing],
    now: dt.datetime,
    scope: Collection[int] | None = None,
    account_cache: dict[int, Account] | None = None,
) -> PlaybookOutcome:
    """Act on a playbook's firings: once per occurrence, honouring the cooldown. Safe to run twice.

    ``scope``: the accounts the firings were evaluated over (None: every account), the only
    ones whose tasks may be closed as cleared. ``account_cache``: accounts already loaded by the
    caller's other playbooks (id → Account), completed with those this one needs.
    """
    outcome = PlaybookOutcome(playbook_id=playbook.pk)
    if playbook.close_tasks_when_cleared:
        outcome.tasks_closed = _close_cleared_tasks(playbook, {f.account_id for f in firings}, now, scope)
    runs = _record_new_runs(playbook, without_cooldown(playbook, firings, now), now)
    outcome.fired = len(runs)
    if not runs:
        return outcome
    account_ids = [run.account_id for run in runs]
    refs = {ref.id: ref for ref in account_refs(account_ids)}
    if account_cache is None:
        accounts = _accounts_by_id(account_ids)
    else:  # one evaluation's playbooks share the rows they loaded (the step writes no account)
        account_cache.update(_accounts_by_id([pk for pk in account_ids if pk not in account_cache]))
        accounts = account_cache
    alert_ids: list[int] = []
    for step in playbook.steps.all():
        step.playbook = playbook
        if step.kind == Step.Kind.TASK:
            created, updated = _apply_task_step(step, runs, refs, accounts, now)
            outcome.tasks_created += created
            outcome.tasks_updated += updated
        else:
            alert_ids.extend(_apply_alert_step(step, runs, refs, accounts, now))
    outcome.alerts = len(alert_ids)
    outcome.alert_ids = tuple(alert_ids)
    return outcome
