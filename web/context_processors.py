"""What the top bar shows on every page: the user's open tasks and unread alerts (two queries).

The values are computed when a template first reads them, so pages that don't show the top bar
(the Django admin) pay nothing.
"""

import functools
from collections.abc import Callable

from django.http import HttpRequest

from accounts.visibility import is_admin, is_manager
from playbooks.models import Alert, Task


def _lazy(compute: Callable[[], object]) -> Callable[[], object]:
    """A callable the template calls at most once, whatever the number of times it is read."""
    return functools.cache(compute)


def work_counts(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "nav_open_tasks": _lazy(lambda: Task.objects.filter(assignee=user, status=Task.Status.OPEN).count()),
        "nav_unread_alerts": _lazy(
            lambda: Alert.objects.filter(recipient=user, read_at__isnull=True).count()
        ),
        "nav_is_manager": _lazy(lambda: is_manager(user)),
        "nav_is_admin": _lazy(lambda: is_admin(user) or user.is_staff),
    }
