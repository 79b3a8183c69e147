"""Emails as outbox rows: render a subject / text / html triplet, write it once under its key.

Nothing here talks to an SMTP server; ``playbooks.delivery`` sends what these functions wrote.
An alert's email is the exception to "render, then write": its row holds the alert and the
address, and the email is rendered from the alert when it is sent (``render_alert_emails``).
Templates live in ``templates/emails/<name>_subject.txt``, ``<name>.txt`` and ``<name>.html``.
"""

import datetime as dt
import hashlib
import html
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Case, F, TextField, Value, When
from django.db.models.functions import Cast
from django.template.loader import get_template, render_to_string
from django.utils import timezone

from accounts.bulk import copy_insert
from accounts.lookups import any_of
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
    fresh = _new_keys(deliveries)
    # A concurrent writer may have inserted some of these since the read: the unique key makes
    # that a no-op (the count is then an upper bound, the rows are never doubled).
    copy_insert(EmailDelivery, fresh, ignore_conflicts=True)
    return len(fresh)


def _new_keys(deliveries: Sequence[EmailDelivery]) -> list[EmailDelivery]:
    """The first delivery of each key not yet in the outbox (one query for the keys already there)."""
    keys = {delivery.key for delivery in deliveries}
    existing = set(EmailDelivery.objects.filter(any_of("key", keys)).values_list("key", flat=True))
    fresh: dict[str, EmailDelivery] = {}
    for delivery in deliveries:
        if delivery.key not in existing:
            fresh.setdefault(delivery.key, delivery)
    return list(fresh.values())


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


# Alerts queued per statement: their ids are one array parameter on PostgreSQL, one parameter
# each elsewhere (SQLite builds may allow only 32,766).
ALERT_EMAIL_CHUNK = 50_000
ALERT_EMAIL_CHUNK_PORTABLE = 5_000
# What an alert's outbox row is written with (``_insert_alert_outbox_rows``), in this order.
OUTBOX_FIELDS = [
    "key",
    "alert",
    "to_email",
    "subject",
    "text_body",
    "html_body",
    "status",
    "attempts",
    "last_error",
    "next_attempt_at",
    "created_at",
]


def queue_alert_emails(*, alerts: Iterable[Alert], now: dt.datetime) -> int:
    """Write one outbox row per alert with an address (key ``alert:<id>``). Safe to run twice.

    The row holds the address and the alert, not the email: it is rendered from the alert when
    sent (``render_alert_emails``). Lifeline never changes an alert's title, body or reason once
    raised, so the email is the one it would have rendered now (an admin's edit, or a renamed
    account, shows in an email not sent yet). A day's ~250,000 alerts at 1,000,000 accounts (a
    team of ten gets ten) then write ~100 bytes each to the outbox instead of ~2 KB of text and
    html.
    """
    return queue_alert_emails_by_id(alert_ids=[alert.pk for alert in alerts], now=now)


def queue_alert_emails_by_id(*, alert_ids: Iterable[int], now: dt.datetime) -> int:
    """``queue_alert_emails`` for the alerts of these ids, as one ``INSERT … SELECT`` a chunk.

    The address is the recipient's while the user is active, else none (they still see the
    alert in the app), or the alert's own address. A key already in the outbox is left alone.
    """
    alert_ids = sorted(alert_ids)
    chunk = ALERT_EMAIL_CHUNK if connection.vendor == "postgresql" else ALERT_EMAIL_CHUNK_PORTABLE
    queued = 0
    for start in range(0, len(alert_ids), chunk):
        queued += _insert_alert_outbox_rows(alert_ids[start : start + chunk], now)
    return queued


def _insert_alert_outbox_rows(alert_ids: Sequence[int], now: dt.datetime) -> int:
    addressed = (
        Alert.objects.filter(any_of("pk", alert_ids))
        .annotate(
            address=Case(
                When(recipient__isnull=True, then=F("email")),
                When(recipient__is_active=True, then=F("recipient__email")),
                default=Value(""),
            )
        )
        .exclude(address="")
        .order_by("id")
        .values("id", "address")
    )
    select_sql, select_params = addressed.query.sql_with_params()
    quote = connection.ops.quote_name
    columns = ", ".join(quote(EmailDelivery._meta.get_field(name).column) for name in OUTBOX_FIELDS)
    sql = (
        f"INSERT INTO {quote(EmailDelivery._meta.db_table)} ({columns})"
        " SELECT 'alert:' || CAST(a.id AS TEXT), a.id, a.address, '', '', '', %s, 0, '', %s, %s"
        # ``WHERE true``: SQLite would read ``ON CONFLICT`` as a join's ``ON`` without it.
        f" FROM ({select_sql}) a WHERE true ON CONFLICT DO NOTHING"
    )
    at = connection.ops.adapt_datetimefield_value
    params = [EmailDelivery.Status.PENDING.value, at(now), at(timezone.now()), *select_params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def render_alert_emails(deliveries: Sequence[EmailDelivery]) -> dict[int, Exception | None]:
    """Fill in the subject, text and html of the alert emails among ``deliveries`` (as claimed).

    An alert email's outbox row holds no content (``queue_alert_emails``): it is rendered here,
    from its alert, just before it is sent. With the shipped templates (``lean_alert_templates``)
    by ``render_alert_email`` from plain rows, once for the recipients of one firing (their
    alerts hold the same content); otherwise through the templates, as ``render_email`` does.
    Rows with content (digests, rows queued with it) are left as they are.

    Gives the rows left without content, by id: the error rendering raised (an overriding
    template that fails), or None when the alert is gone (its outbox row went with it).
    """
    pending = [row for row in deliveries if row.alert_id is not None and not row.text_body]
    if not pending:
        return {}
    ids = sorted({row.alert_id for row in pending})
    rendered = _lean_alert_emails(ids) if lean_alert_templates() else _templated_alert_emails(ids)
    unrendered: dict[int, Exception | None] = {}
    for row in pending:
        email = rendered.get(row.alert_id)
        if isinstance(email, RenderedEmail):
            row.subject, row.text_body, row.html_body = email.subject, email.text, email.html
        else:
            unrendered[row.pk] = email
    return unrendered


def _rendered_or_error(
    render: Callable[..., RenderedEmail], *args: Any, **kwargs: Any
) -> RenderedEmail | Exception:
    """One alert's email, or what rendering it raised: one bad alert must not hold back the batch."""
    try:
        return render(*args, **kwargs)
    except Exception as exc:  # reported on the alert's outbox row (``last_error``)
        return exc


def _lean_alert_emails(alert_ids: Sequence[int]) -> dict[int, RenderedEmail | Exception]:
    rows = Alert.objects.filter(any_of("pk", alert_ids)).values_list(
        "id",
        "account_id",
        "account__name",
        "severity",
        "title",
        "body",
        Cast("reason", output_field=TextField()),
    )
    base_url = settings.LIFELINE_BASE_URL
    by_content: dict[tuple, RenderedEmail | Exception] = {}
    rendered = {}
    for pk, account_id, name, severity, title, body, reason in rows:
        content = (account_id, name, severity, title, body, reason)
        if content not in by_content:
            by_content[content] = _rendered_or_error(
                render_alert_email,
                severity=severity,
                severity_label=Alert(severity=severity).get_severity_display(),
                title=title,
                body=body,
                account_name=name,
                account_url=account_url(account_id),
                why=reason_lines(json.loads(reason) if reason else {}),
                base_url=base_url,
            )
        rendered[pk] = by_content[content]
    return rendered


def _templated_alert_emails(alert_ids: Sequence[int]) -> dict[int, RenderedEmail | Exception]:
    alerts = Alert.objects.filter(any_of("pk", alert_ids)).select_related("account", "recipient")
    return {
        alert.pk: _rendered_or_error(
            render_email,
            "alert",
            {
                "alert": alert,
                "account": alert.account,
                "account_url": account_url(alert.account_id),
                "why": reason_lines(alert.reason),
            },
        )
        for alert in alerts
    }


# The templates ``render_alert_email`` writes out, by the SHA-256 of their source: an edited or
# overriding template (another templates dir, an app) has another digest and is rendered as is.
LEAN_ALERT_TEMPLATES = {
    "emails/alert_subject.txt": "c34ed1e04c8ae11b3453ecb9235bf04c303b316dfb490742b40550d7dcc4ae07",
    "emails/alert.txt": "a35ffbc2018cb1002cba0552793d16fd560a9c7e6d49c9084d4b136deff392bb",
    "emails/alert.html": "a0220c50e0ee120bb9d387b626fc967f699d6ed2568a3685f97dd5218eb90c90",
    "emails/base.html": "ea4847b2fee7cb4658f77adabf6ac773f62a3b81d2272135872249c9db5a6685",
}


def alert_template_digests() -> dict[str, str]:
    """The SHA-256 of each alert template's source, as the template engine finds it."""
    return {
        name: hashlib.sha256(get_template(name).template.source.encode()).hexdigest()
        for name in LEAN_ALERT_TEMPLATES
    }


def lean_alert_templates() -> bool:
    """Whether ``render_alert_email`` gives what the alert templates give: they are the shipped ones.

    Read at every call (four cached template look-ups), so an override is never missed.
    """
    try:
        engine = get_template(next(iter(LEAN_ALERT_TEMPLATES))).backend.engine
        return engine.autoescape and alert_template_digests() == LEAN_ALERT_TEMPLATES
    except AttributeError:  # another template engine than Django's: render through it
        return False


def render_alert_email(
    *,
    severity: str,
    severity_label: str,
    title: str,
    body: str,
    account_name: str,
    account_url: str,
    why: Sequence[tuple[str, str]],
    base_url: str,
) -> RenderedEmail:
    """What ``render_email("alert", …)`` gives with the shipped templates, without the engine.

    The same bytes (tests render varied alerts both ways): the subject and text as written,
    the html with every value escaped as autoescape does. Only used when
    ``lean_alert_templates()``; a change to the templates needs the same change here (and new
    digests in ``LEAN_ALERT_TEMPLATES``).
    """
    critical = severity == "critical"
    subject = f"{'[Critical] ' if critical else ''}{title} · {account_name}"
    subject = " ".join(subject.split())[:SUBJECT_MAX_LENGTH]
    text = f"{severity_label} alert on {account_name}\n\n{title}\n"
    if body:
        text += f"\n{body}\n"
    if why:
        text += "\nWhy you are getting this:\n" + "".join(f"  - {label}: {value}\n" for label, value in why)
    text += f"\nOpen the account: {account_url}\n\n-- \nLifeline, {base_url}/"
    text = text.strip() + "\n"
    color = "#b42318" if critical else "#946200" if severity == "warning" else "#52606d"
    e_title, e_name, e_url, e_base = (
        escape(title),
        escape(account_name),
        escape(account_url),
        escape(base_url),
    )
    content = (
        f'\n<p style="margin:0 0 8px 0; font-size:13px; font-weight:600; color:{color};">'
        f"{escape(severity_label)} alert on {e_name}</p>\n"
        f'<h1 style="margin:0 0 16px 0; font-size:20px; line-height:1.3; color:#1f2933;">{e_title}</h1>\n'
    )
    if body:
        content += f'<p style="margin:0 0 16px 0; white-space:pre-line;">{escape(body)}</p>'
    content += "\n"
    if why:
        content += (
            '\n<p style="margin:0 0 6px 0; font-weight:600;">Why you are getting this</p>\n'
            '<table role="presentation" cellpadding="0" cellspacing="0" style="margin:0 0 20px 0;'
            ' border-collapse:collapse; font-size:14px;">\n'
            + "".join(
                '<tr><td style="padding:3px 16px 3px 0; color:#52606d; vertical-align:top;">'
                f'{escape(label)}</td><td style="padding:3px 0;">{escape(value)}</td></tr>\n'
                for label, value in why
            )
            + "</table>\n"
        )
    content += (
        f'\n<p style="margin:0;"><a href="{e_url}" style="display:inline-block; padding:9px 16px;'
        " border-radius:4px; background-color:#2f5fd0; color:#ffffff; text-decoration:none;"
        f' font-weight:600;">Open {e_name}</a></p>\n'
        f'<p style="margin:12px 0 0 0; font-size:12px; color:#7b8794;">{e_url}</p>\n'
    )
    html = (
        _HTML_HEAD
        + e_title
        + _HTML_AFTER_TITLE
        + content
        + _HTML_AFTER_CONTENT
        + f'Sent by Lifeline, <a href="{e_base}/" style="color:#7b8794;">{e_base}</a>.'
        + _HTML_TAIL
    )
    return RenderedEmail(subject=subject, text=text, html=html)


def escape(value: Any) -> str:
    """Django's autoescape of a plain (not safe) value: ``& < > " '``."""
    return html.escape(str(value))


_HTML_HEAD = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>"""
_HTML_AFTER_TITLE = """</title>
</head>
<body style="margin:0; padding:0; background-color:#f4f5f7; font-family:-apple-system, BlinkMacSystemFont, \
'Segoe UI', Helvetica, Arial, sans-serif; font-size:15px; line-height:1.5; color:#1f2933;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background-color:#f4f5f7;">
<tr><td align="center" style="padding:24px 12px;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="max-width:640px; \
background-color:#ffffff; border:1px solid #e1e4e8; border-radius:6px;">
<tr><td style="padding:16px 24px; border-bottom:1px solid #e1e4e8; font-size:13px; font-weight:600; \
letter-spacing:0.04em; text-transform:uppercase; color:#52606d;">Lifeline</td></tr>
<tr><td style="padding:24px;">
"""
_HTML_AFTER_CONTENT = """
</td></tr>
<tr><td style="padding:16px 24px; border-top:1px solid #e1e4e8; font-size:12px; color:#7b8794;">"""
_HTML_TAIL = """</td></tr>
</table>
</td></tr>
</table>
</body>
</html>
"""
