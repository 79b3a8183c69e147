"""Alert emails rendered in bulk: the lean path gives exactly what the templates give.

``render_alert_email`` writes out the shipped ``emails/alert*`` templates; these tests render
many varied alerts both ways (odd names, titles, bodies and reasons, HTML-special characters)
and compare the bytes, then the emails each path renders for queued outbox rows (an alert's
email is rendered from the alert when it is sent).
"""

import datetime as dt
import random

import pytest
from django.conf import settings as django_settings

from accounts.models import Account
from playbooks import emails
from playbooks.delivery import deliver_due_emails
from playbooks.emails import (
    account_url,
    lean_alert_templates,
    queue_alert_emails,
    reason_lines,
    render_alert_email,
    render_alert_emails,
    render_email,
)
from playbooks.models import Alert, EmailDelivery, Step
from tests.factories import AccountFactory, UserFactory

NOW = dt.datetime(2026, 11, 12, 9, 0, tzinfo=dt.UTC)
ODD = [
    "",
    "x",
    "<b>&amp;</b>",
    "\"quoted\" 'apostrophe'",
    "a\nb",
    "  spaced  ",
    "é ü · —",
    "{{ x }}",
    "\t\r\n",
]
ODD_VALUES = [*ODD, None, 0, 1.5, True, [1, "<2>"], {"a": "<>&"}, {"old_score": 70, "new_<x>": "&"}]
REASON_KEYS = [
    "playbook",
    "trigger",
    "trigger_label",
    "values",
    "occurrence",
    "fired_at",
    "extra_key",
    "score",
]
SEVERITIES = ["critical", "warning", "info", "unknown"]


def varied_alerts(count: int, seed: int = 7) -> list[Alert]:
    """Unsaved alerts (with their accounts) covering the templates' branches and escaping."""
    rnd = random.Random(seed)
    alerts = []
    for i in range(count):
        name = rnd.choice(["Acme", "<script>&\"'", "A & B", "", " x ", "Ünï\ncode"]) + rnd.choice(ODD)
        reason = {
            key: rnd.choice(ODD_VALUES) for key in rnd.sample(REASON_KEYS, rnd.randint(0, len(REASON_KEYS)))
        }
        account = Account(id=i + 1, name=name)
        alerts.append(
            Alert(
                id=i + 1,
                account=account,
                title=rnd.choice(ODD) + "T" * rnd.randint(0, 320),
                body=rnd.choice(ODD),
                severity=rnd.choice(SEVERITIES),
                reason=reason,
            )
        )
    return alerts


def test_the_shipped_templates_take_the_lean_path():
    assert lean_alert_templates(), (
        "emails/alert* or emails/base.html changed: update render_alert_email and LEAN_ALERT_TEMPLATES"
    )


def test_lean_rendering_gives_the_templates_bytes_for_varied_alerts():
    for alert in varied_alerts(1500):
        why = reason_lines(alert.reason)
        url = account_url(alert.account_id)
        expected = render_email(
            "alert", {"alert": alert, "account": alert.account, "account_url": url, "why": why}
        )
        lean = render_alert_email(
            severity=alert.severity,
            severity_label=alert.get_severity_display(),
            title=alert.title,
            body=alert.body,
            account_name=alert.account.name,
            account_url=url,
            why=why,
            base_url=django_settings.LIFELINE_BASE_URL,
        )
        assert lean == expected, alert.pk


def test_html_values_are_escaped():
    email = render_alert_email(
        severity="critical",
        severity_label="Critical",
        title="<b>Down</b>",
        body="a & b",
        account_name='O\'Neil "&" <Co>',
        account_url="http://x/accounts/1/",
        why=[("<Label>", "'v'")],
        base_url="http://x",
    )
    assert "O&#x27;Neil &quot;&amp;&quot; &lt;Co&gt;" in email.html
    assert "&lt;b&gt;Down&lt;/b&gt;" in email.html and "a &amp; b" in email.html
    assert "&lt;Label&gt;" in email.html and "&#x27;v&#x27;" in email.html
    assert 'O\'Neil "&" <Co>' in email.text and email.subject == '[Critical] <b>Down</b> · O\'Neil "&" <Co>'


def rendered_outbox() -> list[tuple]:
    """The outbox rows as they are sent: each alert email rendered from its alert."""
    rows = list(EmailDelivery.objects.order_by("key"))
    assert all((row.subject, row.text_body, row.html_body) == ("", "", "") for row in rows)
    render_alert_emails(rows)
    return [
        (row.key, row.alert_id, row.to_email, row.subject, row.text_body, row.html_body, row.status)
        for row in rows
    ]


@pytest.mark.django_db
def test_the_lean_path_renders_what_the_templates_render_for_the_queued_alerts(monkeypatch):
    active, inactive, no_address = (
        UserFactory(),
        UserFactory(is_active=False),
        UserFactory(email=""),
    )
    alerts, addressed = [], {}
    for i, template in enumerate(varied_alerts(120, seed=11)):
        account = AccountFactory(name=template.account.name[:200])
        recipient = [active, inactive, no_address, None][i % 4]
        alert = Alert.objects.create(
            account=account,
            recipient=recipient,
            email="" if recipient else ["ops@customer.example", ""][i % 8 // 4],
            recipient_key=f"k{i}",
            kind="band_entered",
            title=template.title[:300],
            body=template.body,
            severity=template.severity,
            reason=template.reason,
        )
        alerts.append(alert)
        address = (recipient.email if recipient.is_active else "") if recipient else alert.email
        if address:
            addressed[f"alert:{alert.pk}"] = address

    assert queue_alert_emails(alerts=alerts, now=NOW) == len(addressed) > 40
    assert queue_alert_emails(alerts=alerts, now=NOW) == 0  # queued once
    assert dict(EmailDelivery.objects.values_list("key", "to_email")) == addressed
    assert set(EmailDelivery.objects.values_list("status", "attempts", "next_attempt_at")) == {
        ("pending", 0, NOW)
    }
    lean = rendered_outbox()
    monkeypatch.setattr(emails, "lean_alert_templates", lambda: False)

    assert lean == rendered_outbox()


@pytest.mark.django_db
def test_the_alerts_of_one_firing_share_a_rendering_and_only_equal_content_does(monkeypatch):
    """Several recipients per firing, queued in chunks: each email is the one its own alert renders."""
    monkeypatch.setattr(emails, "ALERT_EMAIL_CHUNK", 7)
    recipients = [UserFactory() for _ in range(4)]
    twins = [AccountFactory(name="Same name"), AccountFactory(name="Same name")]
    alerts = []
    for n, (account, score) in enumerate([(twins[0], 31), (twins[0], 32), (twins[1], 31), (twins[0], 31)]):
        for user in recipients:  # one firing: the same title, body and reason for each recipient
            alerts.append(
                Alert.objects.create(
                    account=account,
                    recipient=user,
                    recipient_key=f"user:{user.pk}:{n}",
                    kind="band_entered",
                    title="Turned red",
                    body="",
                    severity=Step.Severity.WARNING,
                    reason={"playbook": "At risk", "values": {"score": score}},
                )
            )

    assert queue_alert_emails(alerts=alerts, now=NOW) == 16
    lean = rendered_outbox()
    monkeypatch.setattr(emails, "lean_alert_templates", lambda: False)

    assert lean == rendered_outbox()
    bodies = {row[1]: row[4] for row in lean}  # alert id: text
    assert len(set(bodies.values())) == 3  # the scores differ, and so do the two accounts' links
    assert "Score: 32" in bodies[alerts[4].pk] and "Score: 31" in bodies[alerts[0].pk]
    assert bodies[alerts[0].pk] != bodies[alerts[8].pk]  # same name and reason, another account


@pytest.mark.django_db
def test_an_overriding_template_is_rendered_as_written(settings, tmp_path, smtp_server):
    (tmp_path / "emails").mkdir()
    (tmp_path / "emails" / "alert_subject.txt").write_text("Custom: {{ alert.title }} ({{ alert.kind }})")
    engine = settings.TEMPLATES[0]
    settings.TEMPLATES = [{**engine, "DIRS": [tmp_path, *engine["DIRS"]]}]
    account = AccountFactory(name="Acme & Co")
    alert = Alert.objects.create(
        account=account,
        email="ops@customer.example",
        recipient_key="email:ops@customer.example",
        kind="band_entered",
        title="Turned red",
        severity=Step.Severity.CRITICAL,
    )

    assert not lean_alert_templates()
    assert queue_alert_emails(alerts=[alert], now=NOW) == 1
    assert deliver_due_emails(now=NOW).sent == 1

    assert smtp_server.messages[0].subject == "Custom: Turned red (band_entered)"
    assert EmailDelivery.objects.get().subject == "Custom: Turned red (band_entered)"  # kept once sent
