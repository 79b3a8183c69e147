"""Sign-in attempts limited in the database, per username, whatever the entry point (API token,
login page, admin): at most LIFELINE_LOGIN_MAX_ATTEMPTS password checks per
LIFELINE_LOGIN_WINDOW_SECONDS; a successful sign-in starts afresh."""

import datetime as dt
import math
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.utils import timezone

from access.models import LoginAttempts


@dataclass(frozen=True)
class Decision:
    allowed: bool
    attempts: int
    retry_after: int  # seconds until the window ends (0 when allowed)


def _key(username: str) -> str:
    return str(username).strip().lower()[:150]


def reserve_login_attempt(*, username: str, now: dt.datetime) -> Decision:
    """Count one attempt before the password is checked; refuse it past the limit. Atomic."""
    window = dt.timedelta(seconds=settings.LIFELINE_LOGIN_WINDOW_SECONDS)
    table = LoginAttempts._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table} (username, attempts, window_started_at) VALUES (%s, 1, %s)
            ON CONFLICT (username) DO UPDATE SET
                attempts = CASE WHEN {table}.window_started_at <= %s THEN 1 ELSE {table}.attempts + 1 END,
                window_started_at = CASE WHEN {table}.window_started_at <= %s
                    THEN excluded.window_started_at ELSE {table}.window_started_at END
            RETURNING attempts, window_started_at
            """,
            [_key(username), now, now - window, now - window],
        )
        attempts, started = cursor.fetchone()
    if isinstance(started, str):  # SQLite hands back text
        started = dt.datetime.fromisoformat(started)
    if timezone.is_naive(started):
        started = timezone.make_aware(started, dt.UTC)
    allowed = attempts <= settings.LIFELINE_LOGIN_MAX_ATTEMPTS
    retry_after = 0 if allowed else max(1, math.ceil((started + window - now).total_seconds()))
    return Decision(allowed=allowed, attempts=attempts, retry_after=retry_after)


def forget_login_attempts(*, username: str) -> None:
    LoginAttempts.objects.filter(username=_key(username)).delete()


class LimitedModelBackend(ModelBackend):
    """Django's username/password backend behind the attempt limit.

    A refused attempt raises PermissionDenied (``authenticate()`` then answers None without
    asking another backend) and leaves ``request.login_retry_after`` for the view to report.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(self._username_field())
        if username is None or password is None:
            return None
        decision = reserve_login_attempt(username=username, now=timezone.now())
        if not decision.allowed:
            if request is not None:
                request.login_retry_after = decision.retry_after
            raise PermissionDenied
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is not None:
            forget_login_attempts(username=username)
        return user

    @staticmethod
    def _username_field() -> str:
        from django.contrib.auth import get_user_model

        return get_user_model().USERNAME_FIELD
