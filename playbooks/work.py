"""A CSM's work: creating and changing tasks, reading and judging alerts."""

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils import timezone

from playbooks.models import Alert, Task


@transaction.atomic
def create_task(*, actor, values: dict[str, Any]) -> Task:
    """A manual task; assigned to its creator unless someone else is named."""
    values = {**values}
    values.setdefault("assignee", actor)
    return Task.objects.create(created_by=actor, reason={"manual": True}, **values)


@transaction.atomic
def update_task(*, actor, task: Task, values: dict[str, Any], now: dt.datetime | None = None) -> Task:
    """Change a task's fields; closing it stamps completed_at, reopening clears it."""
    now = now or timezone.now()
    fields = list(values)
    for name, value in values.items():
        setattr(task, name, value)
    if "status" in values:
        task.completed_at = None if task.status == Task.Status.OPEN else now
        fields.append("completed_at")
    task.updated_at = now
    task.save(update_fields=[*fields, "updated_at"])
    return task


def mark_alert_read(*, alert: Alert, now: dt.datetime) -> Alert:
    Alert.objects.filter(pk=alert.pk, read_at__isnull=True).update(read_at=now)
    alert.refresh_from_db(fields=["read_at"])
    return alert


def judge_alert(*, alert: Alert, useful: bool, now: dt.datetime) -> Alert:
    """The recipient's judgement, counted in the playbook's track record; judging reads it too."""
    Alert.objects.filter(pk=alert.pk).update(useful=useful)
    Alert.objects.filter(pk=alert.pk, read_at__isnull=True).update(read_at=now)
    alert.refresh_from_db(fields=["useful", "read_at"])
    return alert
