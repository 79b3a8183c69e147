"""What the top bar shows on every page: the user's open tasks and unread alerts (two queries)."""

from django.http import HttpRequest

from accounts.visibility import is_admin, is_manager
from playbooks.models import Alert, Task


def work_counts(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "nav_open_tasks": Task.objects.filter(assignee=user, status=Task.Status.OPEN).count(),
        "nav_unread_alerts": Alert.objects.filter(recipient=user, read_at__isnull=True).count(),
        "nav_is_manager": is_manager(user),
        "nav_is_admin": is_admin(user) or user.is_staff,
    }
