"""API tokens (django-rest-knox): stored as a SHA-512 digest, with an expiry, revocable.

The key is shown once, when issued; the database keeps its first 15 characters (to find it) and
its digest. ``Authorization: Token <key>`` as before (API.md).
"""

import datetime as dt

from django.conf import settings
from knox.models import AuthToken


def issue_token(*, user, ttl: dt.timedelta | None = None) -> tuple[AuthToken, str]:
    """A new token for ``user``, valid for ``ttl`` (default LIFELINE_TOKEN_TTL_DAYS), and its key."""
    return AuthToken.objects.create(
        user=user, expiry=ttl or dt.timedelta(days=settings.LIFELINE_TOKEN_TTL_DAYS)
    )


def revoke_token(*, token: AuthToken) -> None:
    token.delete()


def revoke_all_tokens(*, user) -> int:
    """Every token of ``user`` (the owner's "sign out everywhere", or an admin's)."""
    count, _ = AuthToken.objects.filter(user=user).delete()
    return count
