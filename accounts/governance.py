"""Data requests and retention: erase a contact's personal data, prune old raw events. Both audited.

Aggregates stay: an erased contact's events and survey answers still count for their account
(the rows remain, unlinked from the person, without free text), and pruning raw events keeps the
daily rollup (``EventDaily``), which the health metrics and charts read.
"""

import datetime as dt
from dataclasses import dataclass

from django.db import transaction

from accounts.models import AuditEntry, Contact, Event, SurveyResponse

# Raw events younger than this are never pruned: milestone rules and metrics read recent ones.
MIN_RETENTION_DAYS = 30
RETENTION_STEP = "accounts.retention"  # the nightly prune, as recorded in StepRun


@dataclass(frozen=True)
class Erasure:
    contact_id: int
    account_id: int
    events_unlinked: int
    surveys_unlinked: int


@transaction.atomic
def erase_contact(*, contact: Contact, actor=None) -> Erasure:
    """Delete the contact and its personal data; its events and survey scores stay with the account.

    The events lose their free-form ``properties`` and the survey answers their ``comment`` (either
    may name the person). The audit row records ids and counts only.
    """
    events = Event.objects.filter(contact=contact).update(contact=None, properties={})
    surveys = SurveyResponse.objects.filter(contact=contact).update(contact=None, comment="")
    erasure = Erasure(
        contact_id=contact.pk, account_id=contact.account_id, events_unlinked=events, surveys_unlinked=surveys
    )
    contact.delete()
    AuditEntry.objects.create(
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        action="contact.erase",
        target_type="accounts.contact",
        target_id=str(erasure.contact_id),
        changes={
            "account_id": erasure.account_id,
            "events_unlinked": events,
            "surveys_unlinked": surveys,
        },
    )
    return erasure


def prune_events(*, older_than_days: int, now: dt.datetime, actor=None, batch_size: int = 10_000) -> int:
    """Delete raw events that occurred more than ``older_than_days`` ago, in batches; keep the rollups.

    Each batch is its own transaction, so a large backlog never holds locks for long; the audit row
    is written at the end with the total.
    """
    if older_than_days < MIN_RETENTION_DAYS:
        raise ValueError(f"Raw events are kept at least {MIN_RETENTION_DAYS} days (got {older_than_days}).")
    cutoff = now - dt.timedelta(days=older_than_days)
    deleted = 0
    while True:
        with transaction.atomic():
            old = Event.objects.filter(occurred_at__lt=cutoff).order_by()
            ids = list(old.values_list("id", flat=True)[:batch_size])
            if not ids:
                break
            # Nothing points at an event, so this is one DELETE (no per-row collection).
            deleted += Event.objects.filter(id__in=ids).delete()[0]
    AuditEntry.objects.create(
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        action="events.prune",
        target_type="accounts.event",
        target_id="*",
        changes={"older_than_days": older_than_days, "cutoff": cutoff.isoformat(), "deleted": deleted},
    )
    return deleted
