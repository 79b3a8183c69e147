"""Creating, changing and deleting accounts, with an audit row for what users configure."""

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.audit import record_change
from accounts.models import Account

# Changes to these fields are audited: they decide who works the account and what it is worth.
AUDITED_FIELDS = ("owner", "team", "status", "arr", "renewal_date", "segment")


def _apply_status_rules(values: dict[str, Any], *, today: dt.date) -> None:
    """Churn gets a date (today unless given); reactivation clears it."""
    if values.get("status") == Account.Status.CHURNED and not values.get("churned_at"):
        values["churned_at"] = today
    if values.get("status") == Account.Status.ACTIVE:
        values["churned_at"] = None


def _audit_value(value: Any) -> Any:
    if hasattr(value, "pk"):
        return value.pk
    return None if value is None else str(value)


@transaction.atomic
def create_account(*, actor, values: dict[str, Any], now: dt.datetime | None = None) -> Account:
    now = now or timezone.now()
    _apply_status_rules(values, today=now.date())
    account = Account.objects.create(**values)
    record_change(
        actor=actor,
        action="account.created",
        target=account,
        changes={field: _audit_value(values.get(field)) for field in AUDITED_FIELDS if field in values},
    )
    return account


@transaction.atomic
def update_account(
    *, actor, account: Account, values: dict[str, Any], now: dt.datetime | None = None
) -> Account:
    """Write only the given fields; audit those in AUDITED_FIELDS that really changed."""
    now = now or timezone.now()
    if "status" in values and values["status"] != account.status:
        _apply_status_rules(values, today=now.date())
    changes = {}
    for field, value in values.items():
        before = getattr(account, field)
        if field in AUDITED_FIELDS and before != value:
            changes[field] = [_audit_value(before), _audit_value(value)]
        setattr(account, field, value)
    if values:
        account.save(update_fields=[*values.keys(), "updated_at"])
    if changes:
        record_change(actor=actor, action="account.changed", target=account, changes=changes)
    return account


@transaction.atomic
def delete_account(*, actor, account: Account) -> None:
    record_change(
        actor=actor,
        action="account.deleted",
        target=account,
        changes={"external_id": account.external_id, "name": account.name},
    )
    account.delete()
