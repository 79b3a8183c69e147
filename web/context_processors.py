"""What the top bar shows on every page: the user's open tasks and unread alerts (one query).

The values are computed when a template first reads them, so pages that don't show the top bar
(the Django admin) pay nothing.
"""

import functools
from collections.abc import Callable

from django.db import connection
from django.http import HttpRequest

from accounts.visibility import is_admin, is_manager
from playbooks.models import Alert, Task


def _lazy(compute: Callable[[], object]) -> Callable[[], object]:
    """A callable the template calls at most once, whatever the number of times it is read."""
    return functools.cache(compute)


def nav_counts(user) -> dict[str, int]:
    """The user's open tasks and unread alerts: one query, two scalar subqueries (portable SQL,
    and cheaper to build than the ORM's correlated form on every page)."""
    sql = (
        f"SELECT (SELECT COUNT(*) FROM {Task._meta.db_table} WHERE assignee_id = %s AND status = %s),"
        f" (SELECT COUNT(*) FROM {Alert._meta.db_table} WHERE recipient_id = %s AND read_at IS NULL)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [user.pk, Task.Status.OPEN.value, user.pk])
        open_tasks, unread_alerts = cursor.fetchone()
    return {"open_tasks": open_tasks, "unread_alerts": unread_alerts}


def work_counts(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    counts = _lazy(lambda: nav_counts(user))
    return {
        "nav_open_tasks": _lazy(lambda: counts()["open_tasks"]),
        "nav_unread_alerts": _lazy(lambda: counts()["unread_alerts"]),
        "nav_is_manager": _lazy(lambda: is_manager(user)),
        "nav_is_admin": _lazy(lambda: is_admin(user) or user.is_staff),
    }
