"""Emails as outbox rows: render a subject / text / html triplet, write it once under its key.

Nothing here talks to an SMTP server; ``playbooks.delivery`` sends what these functions wrote.
Templates live in ``templates/emails/<name>_subject.txt``, ``<name>.txt`` and ``<name>.html``.
"""

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string

from accounts.bulk import copy_insert
from playbooks.models import Alert, EmailDelivery

SUBJECT_MAX_LENGTH = EmailDelivery._meta.get_field("subject").max_length


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def render_email(name: str, context: dict[str, Any]) -> RenderedEmail:
    """Render ``templates/emails/<name>_subject.txt``, ``<name>.txt`` and ``<name>.html``."""
    context = {"base_url": settings.LIFELINE_BASE_URL, **context}
    subject = render_to_string(f"emails/{name}_subject.txt", context)
    # One line, whatever the template did: a newline in a header would start another header.
    subject = " ".join(subject.split())[:SUBJECT_MAX_LENGTH]
    text = render_to_string(f"emails/{name}.txt", context).strip() + "\n"
    html = render_to_string(f"emails/{name}.html", context)
    return RenderedEmail(subject=subject, text=text, html=html)


def account_url(account_id: int) -> str:
    return f"{settings.LIFELINE_BASE_URL}/accounts/{account_id}/"


def queue_emails(*, deliveries: Sequence[EmailDelivery]) -> int:
    """Write outbox rows whose key is new; return how many. Safe to run twice, or twice at once."""
    keys = {delivery.key for delivery in deliveries}
    existing = set(EmailDelivery.objects.filter(key__in=keys).values_list("key", flat=True))
    fresh: dict[str, EmailDelivery] = {}
    for delivery in deliveries:
        if delivery.key not in existing:
            fresh.setdefault(delivery.key, delivery)
    # A concurrent writer may have inserted some of these since the read: the unique key makes
    # that a no-op (the count is then an upper bound, the rows are never doubled).
    copy_insert(EmailDelivery, list(fresh.values()), ignore_conflicts=True)
    return len(fresh)


def reason_lines(reason: dict[str, Any]) -> list[tuple[str, str]]:
    """Why an alert exists, as (label, value) lines: playbook, trigger, the values that fired it."""
    reason = reason or {}
    lines: list[tuple[str, str]] = []
    if reason.get("playbook"):
        lines.append(("Playbook", str(reason["playbook"])))
    trigger = reason.get("trigger_label") or reason.get("trigger")
    if trigger:
        lines.append(("Trigger", str(trigger)))
    values = reason.get("values")
    if isinstance(values, dict):
        for key, value in values.items():
            if value not in (None, ""):
                lines.append((str(key).replace("_", " ").capitalize(), str(value)))
    shown = {"playbook", "playbook_id", "trigger", "trigger_label", "values", "occurrence", "fired_at"}
    for key, value in reason.items():
        if key not in shown and value not in (None, "", {}, []):
            lines.append((str(key).replace("_", " ").capitalize(), str(value)))
    return lines


def _alert_address(alert: Alert) -> str:
    if alert.recipient_id is not None:
        return alert.recipient.email if alert.recipient.is_active else ""
    return alert.email


def queue_alert_emails(*, alerts: Iterable[Alert], now: dt.datetime) -> int:
    """Write one outbox row per alert (key ``alert:<id>``) to its recipient. Safe to run twice."""
    alert_ids = [alert.pk for alert in alerts]
    rows = Alert.objects.filter(pk__in=alert_ids).select_related("account", "recipient").order_by("id")
    deliveries = []
    for alert in rows:
        address = _alert_address(alert)
        if not address:
            continue  # a user without an address (or no longer active) still sees it in the app
        email = render_email(
            "alert",
            {
                "alert": alert,
                "account": alert.account,
                "account_url": account_url(alert.account_id),
                "why": reason_lines(alert.reason),
            },
        )
        deliveries.append(
            EmailDelivery(
                key=f"alert:{alert.pk}",
                alert=alert,
                to_email=address,
                subject=email.subject,
                text_body=email.text,
                html_body=email.html,
                next_attempt_at=now,
            )
        )
    return queue_emails(deliveries=deliveries)
