"""Audit rows for changes to what users configure, written in the caller's transaction."""

from typing import Any

from django.db import models

from accounts.models import AuditEntry


def record_change(*, actor, action: str, target: models.Model, changes: dict[str, Any]) -> AuditEntry:
    """Write one audit row; call it inside the transaction that makes the change."""
    return AuditEntry.objects.create(
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        action=action,
        target_type=target._meta.label_lower,
        target_id=str(target.pk),
        changes=changes,
    )
