"""What the top bar shows on every page: the user's open tasks and unread alerts (one query).

The values are computed when a template first reads them, so pages that don't show the top bar
(the Django admin) pay nothing.
"""

import functools
from collections.abc import Callable

from django.contrib.auth import get_user_model
from django.db.models import Count, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest

from accounts.visibility import is_admin, is_manager
from playbooks.models import Alert, Task


def _lazy(compute: Callable[[], object]) -> Callable[[], object]:
    """A callable the template calls at most once, whatever the number of times it is read."""
    return functools.cache(compute)


def _count_per_user(queryset, user_field: str) -> Coalesce:
    """Rows of ``queryset`` belonging to the outer user, as a scalar subquery (0 when none)."""
    counted = (
        queryset.filter(**{user_field: OuterRef("pk")})
        .order_by()
        .values(user_field)
        .annotate(n=Count("*"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def nav_counts(user) -> dict[str, int]:
    """The user's open tasks and unread alerts: one query (two scalar subqueries on the user's row)."""
    row = (
        get_user_model()
        .objects.filter(pk=user.pk)
        .annotate(
            open_tasks=_count_per_user(Task.objects.filter(status=Task.Status.OPEN), "assignee"),
            unread_alerts=_count_per_user(Alert.objects.filter(read_at__isnull=True), "recipient"),
        )
        .values("open_tasks", "unread_alerts")
        .first()
    )
    return row or {"open_tasks": 0, "unread_alerts": 0}


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
