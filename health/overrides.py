"""Band overrides: a CSM sets an account's band by hand, with a reason, until it expires."""

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Case, F, Value, When

from accounts.audit import record_change
from accounts.models import Account
from health.models import HealthScore, Override

MAX_OVERRIDE_DAYS = 365


def _since(band: str | None, now: dt.datetime) -> Case | None:
    """The account's ``health_band_since`` once its band is ``band`` by hand: unchanged if it
    already was in that band, else now."""
    if band is None:
        return None
    return Case(
        When(health_band=band, health_band_since__isnull=False, then=F("health_band_since")),
        default=Value(now),
    )


@transaction.atomic
def set_override(
    *, actor, account: Account, band: str, reason: str, expires_at: dt.datetime, now: dt.datetime
) -> Override:
    """Override the account's band now (the account row too) and at every recompute until expiry."""
    errors: dict[str, list[str]] = {}
    if band not in Account.Band.values:
        errors["band"] = [f"must be one of {', '.join(Account.Band.values)}"]
    if not isinstance(reason, str) or not reason.strip():
        errors["reason"] = ["a reason is required"]
    if expires_at.tzinfo is None:
        errors["expires_at"] = ["must include a time zone"]
    elif not now < expires_at <= now + dt.timedelta(days=MAX_OVERRIDE_DAYS):
        errors["expires_at"] = [f"must be in the future, at most {MAX_OVERRIDE_DAYS} days ahead"]
    if errors:
        raise ValidationError(errors)
    band_before, since_before = (
        Account.objects.filter(pk=account.pk).values_list("health_band", "health_band_since").get()
    )
    override = Override.objects.create(
        account=account,
        band_before=band_before or "",
        band_since_before=since_before,
        band=band,
        reason=reason.strip(),
        expires_at=expires_at,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
        created_at=now,
    )
    Account.objects.filter(pk=account.pk).update(health_band=band, health_band_since=_since(band, now))
    record_change(
        actor=actor,
        action="health.override.set",
        target=account,
        changes={"band": band, "reason": override.reason, "expires_at": expires_at.isoformat()},
    )
    return override


@transaction.atomic
def lift_overrides(*, actor, account: Account, now: dt.datetime) -> int:
    """Lift the account's live overrides; its band returns to the one its last score gave."""
    live = Override.objects.filter(account=account, lifted_at__isnull=True, expires_at__gt=now)
    first = (
        live.order_by("created_at", "id")
        .values_list("band_before", "band_since_before", "created_at")
        .first()
    )
    lifted = live.update(
        lifted_at=now, lifted_by=actor if getattr(actor, "is_authenticated", False) else None
    )
    if lifted:
        latest = (
            HealthScore.objects.filter(account=account, computed_at__lte=now).order_by("-computed_at").first()
        )
        band = (latest.computed_band or None) if latest else None
        before, since_before, set_at = first
        # Back in the band it had before overrides no recompute has recorded: the stay in that
        # band was never interrupted, so its entry is the one it had. An override the scores
        # recorded (a recompute ran while it was live) interrupted it, as the history shows: the
        # band is entered anew, as when an override expires.
        unrecorded = latest is None or latest.computed_at < set_at
        restored = band and band == before and since_before and unrecorded
        since = since_before if restored else _since(band, now)
        Account.objects.filter(pk=account.pk).update(health_band=band, health_band_since=since)
        record_change(
            actor=actor, action="health.override.lifted", target=account, changes={"lifted": lifted}
        )
    return lifted
