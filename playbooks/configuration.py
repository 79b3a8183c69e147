"""Saving playbooks and their steps (audited), their track record, and dry runs."""

import datetime as dt
from typing import Any

from django.db import transaction
from django.db.models import Count, Q

from accounts.audit import record_change
from accounts.lookups import any_of
from accounts.models import Account
from playbooks.actions import render_text, template_context, without_cooldown
from playbooks.assignment import account_refs, resolve_assignees, resolve_recipients
from playbooks.models import Alert, Playbook, PlaybookRun, Step, Task
from playbooks.triggers import evaluate_trigger


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (
            v.pk
            if hasattr(v, "pk")
            else v
            if isinstance(v, (int, float, str, bool, list, dict)) or v is None
            else str(v)
        )
        for k, v in values.items()
    }


@transaction.atomic
def save_playbook(
    *,
    actor,
    values: dict[str, Any],
    steps: list[dict[str, Any]] | None,
    playbook: Playbook | None = None,
    now: dt.datetime,
) -> Playbook:
    """Create or update a playbook; steps given by id are updated, new ones added, missing ones removed.

    Keeping step ids stable keeps "one open task per step and account" across edits.
    """
    created = playbook is None
    if created:
        playbook = Playbook(active_since=now)
    was_active = playbook.active
    for name, value in values.items():
        setattr(playbook, name, value)
    if not created and playbook.active and not was_active:
        playbook.active_since = now  # re-activated: don't replay what happened while it was off
    playbook.save()
    if steps is not None:
        kept = []
        for index, data in enumerate(steps):
            data = {**data}
            step_id = data.pop("id", None)
            users = data.pop("recipient_users", None)
            data.setdefault("order", index)
            step = playbook.steps.filter(pk=step_id).first() if step_id else None
            if step is None:
                step = Step.objects.create(playbook=playbook, **data)
            else:
                for name, value in data.items():
                    setattr(step, name, value)
                step.save(update_fields=list(data))
            if users is not None:
                step.recipient_users.set(users)
            kept.append(step.pk)
        playbook.steps.exclude(pk__in=kept).delete()
    record_change(
        actor=actor,
        action="playbook.created" if created else "playbook.changed",
        target=playbook,
        changes={**_jsonable(values), **({"steps": len(steps)} if steps is not None else {})},
    )
    return playbook


def playbook_track_record(playbooks) -> dict[int, dict[str, int]]:
    """How often each playbook fired, how many of its tasks were done, how useful its alerts were."""
    ids = [p.pk for p in playbooks]
    runs = dict(
        PlaybookRun.objects.filter(playbook_id__in=ids)
        .values("playbook_id")
        .annotate(n=Count("id"))
        .values_list("playbook_id", "n")
    )
    tasks = {
        row["playbook_id"]: row
        for row in Task.objects.filter(playbook_id__in=ids)
        .values("playbook_id")
        .annotate(total=Count("id"), n_done=Count("id", filter=Q(status=Task.Status.DONE)))
    }
    alerts = {
        row["playbook_id"]: row
        for row in Alert.objects.filter(playbook_id__in=ids)
        .values("playbook_id")
        .annotate(
            total=Count("id"),
            judged_useful=Count("id", filter=Q(useful=True)),
            judged_not_useful=Count("id", filter=Q(useful=False)),
        )
    }
    return {
        pk: {
            "fired": runs.get(pk, 0),
            "tasks": tasks.get(pk, {}).get("total", 0),
            "tasks_done": tasks.get(pk, {}).get("n_done", 0),
            "alerts": alerts.get(pk, {}).get("total", 0),
            "alerts_useful": alerts.get(pk, {}).get("judged_useful", 0),
            "alerts_not_useful": alerts.get(pk, {}).get("judged_not_useful", 0),
        }
        for pk in ids
    }


def dry_run(*, playbook: Playbook, now: dt.datetime, accounts=None) -> list[dict[str, Any]]:
    """What the playbook would do now, on which accounts, without writing anything."""
    # Only new occurrences act (nothing is closed here), so the trigger may leave out in SQL
    # those it already fired, as the pipeline does; the others are filtered below.
    firings = without_cooldown(playbook, evaluate_trigger(playbook, now=now, only_new=True), now)
    if accounts is not None:
        shown = accounts.filter(any_of("pk", {f.account_id for f in firings}))
        visible = set(shown.values_list("pk", flat=True))
        firings = [f for f in firings if f.account_id in visible]
    recorded = PlaybookRun.objects.filter(any_of("trigger_key", {f.key for f in firings}), playbook=playbook)
    seen = set(recorded.values_list("account_id", "trigger_key"))
    firings = [f for f in firings if (f.account_id, f.key) not in seen]
    if not firings:
        return []
    ids = [f.account_id for f in firings]
    by_id = Account.objects.in_bulk(ids)
    refs = account_refs(ids)
    steps = list(playbook.steps.all())
    plans: dict[int, dict[str, Any]] = {}
    for step in steps:
        step.playbook = playbook
        who = (
            resolve_assignees(step=step, accounts=refs)
            if step.kind == Step.Kind.TASK
            else resolve_recipients(step=step, accounts=refs)
        )
        for firing in firings:
            run = PlaybookRun(
                playbook=playbook,
                account_id=firing.account_id,
                trigger_key=firing.key,
                context=firing.context,
                fired_at=now,
            )
            context = template_context(by_id[firing.account_id], playbook, run)
            plan = plans.setdefault(
                firing.account_id,
                {
                    "account": firing.account_id,
                    "name": by_id[firing.account_id].name,
                    "occurrence": firing.key,
                    "values": firing.context,
                    "would_create": [],
                },
            )
            item: dict[str, Any] = {"kind": step.kind, "title": render_text(step.title_template, context)}
            if step.kind == Step.Kind.TASK:
                item |= {
                    "assignee": who.get(firing.account_id),
                    "due_date": (now.date() + dt.timedelta(days=step.due_in_days)).isoformat(),
                    "priority": step.priority,
                }
            else:
                item |= {
                    "recipients": [user or address for user, address in who.get(firing.account_id, [])],
                    "severity": step.severity,
                }
            plan["would_create"].append(item)
    return list(plans.values())
