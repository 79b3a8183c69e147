"""The outbox and its delivery step, against a real SMTP server on loopback."""

import datetime as dt
import threading

import pytest
from django.core.mail import get_connection
from django.db import connection as db_connection

from playbooks import delivery, emails
from playbooks.delivery import DeliveryResult, backoff, deliver_due_emails
from playbooks.emails import queue_alert_emails
from playbooks.models import Alert, EmailDelivery, Step
from playbooks.tasks import deliver_emails_task
from tests.factories import AccountFactory
from tests.support.processes import free_port

NOW = dt.datetime(2026, 11, 12, 9, 0, tzinfo=dt.UTC)
MINUTE = dt.timedelta(minutes=1)

pytestmark = pytest.mark.django_db


def make_alert(account, *, recipient=None, email="", title="Acme turned red", **fields) -> Alert:
    return Alert.objects.create(
        account=account,
        recipient=recipient,
        email=email,
        recipient_key=f"user:{recipient.pk}" if recipient else f"email:{email}",
        kind="band_entered",
        title=title,
        body=fields.pop("body", "The health score fell to 38."),
        severity=fields.pop("severity", Step.Severity.CRITICAL),
        reason=fields.pop(
            "reason",
            {
                "playbook": "At-risk",
                "trigger": "band_entered",
                "trigger_label": "Health band entered",
                "occurrence": "band:red:2026-11-12",
                "values": {"band": "red", "score": 38},
            },
        ),
        **fields,
    )


def queue_one(account, **alert_fields) -> EmailDelivery:
    alert = make_alert(account, **alert_fields)
    assert queue_alert_emails(alerts=[alert], now=NOW) == 1
    return EmailDelivery.objects.get(alert=alert)


def test_alert_emails_arrive_with_recipients_subject_parts_link_and_message_id(
    smtp_server, account_a, world, settings
):
    to_user = make_alert(account_a, recipient=world.csm_a)
    to_address = make_alert(account_a, email="ops@customer.example", severity=Step.Severity.INFO)

    assert queue_alert_emails(alerts=[to_user, to_address], now=NOW) == 2
    assert deliver_due_emails(now=NOW) == DeliveryResult(sent=2, failed=0, retried=0)

    received = {r.rcpt_tos: r for r in smtp_server.messages}
    assert set(received) == {("csm_a@example.com",), ("ops@customer.example",)}
    link = f"{settings.LIFELINE_BASE_URL}/accounts/{account_a.pk}/"
    for (address,), message in received.items():
        row = EmailDelivery.objects.get(to_email=address)
        assert message.message["To"] == address
        assert message.message["From"] == settings.DEFAULT_FROM_EMAIL
        assert message.message_id == row.message_id == f"<lifeline-alert-{row.alert_id}@lifeline.localhost>"
        assert "Acme turned red · Acme" in message.subject
        assert link in message.text
        assert f'href="{link}"' in message.html
        for part in (message.text, message.html):
            assert "The health score fell to 38." in part
            assert "At-risk" in part  # why it exists: the playbook, the trigger, the values
            assert "Health band entered" in part
            assert "Score" in part and "38" in part
        assert row.status == EmailDelivery.Status.SENT
        assert (row.attempts, row.sent_at, row.last_error) == (1, NOW, "")
    assert received[("csm_a@example.com",)].subject == "[Critical] Acme turned red · Acme"
    assert received[("ops@customer.example",)].subject == "Acme turned red · Acme"


def test_html_part_is_self_contained(smtp_server, account_a, world):
    queue_one(account_a, recipient=world.csm_a)
    deliver_due_emails(now=NOW)

    html = smtp_server.messages[0].html
    assert "<link" not in html and "<script" not in html and "<img" not in html
    assert 'style="' in html


def test_queueing_the_same_alerts_twice_writes_nothing_new(account_a, world):
    alerts = [make_alert(account_a, recipient=world.csm_a), make_alert(account_a, email="a@x.example")]

    assert queue_alert_emails(alerts=alerts, now=NOW) == 2
    assert queue_alert_emails(alerts=alerts, now=NOW + MINUTE) == 0
    assert sorted(EmailDelivery.objects.values_list("key", flat=True)) == sorted(
        f"alert:{a.pk}" for a in alerts
    )


def test_alerts_without_a_reachable_address_are_not_emailed(account_a, world):
    world.csm_a2.is_active = False
    world.csm_a2.save(update_fields=["is_active"])
    world.csm_b.email = ""
    world.csm_b.save(update_fields=["email"])
    alerts = [make_alert(account_a, recipient=world.csm_a2), make_alert(account_a, recipient=world.csm_b)]

    assert queue_alert_emails(alerts=alerts, now=NOW) == 0


def test_a_second_delivery_run_sends_nothing(smtp_server, account_a, world):
    queue_one(account_a, recipient=world.csm_a)
    assert deliver_due_emails(now=NOW).sent == 1

    assert deliver_due_emails(now=NOW + dt.timedelta(days=30)) == DeliveryResult(0, 0, 0)
    assert len(smtp_server) == 1


def test_a_batch_uses_one_smtp_connection(smtp_server, account_a):
    alerts = [make_alert(account_a, email=f"r{i}@x.example") for i in range(5)]
    queue_alert_emails(alerts=alerts, now=NOW)

    assert deliver_due_emails(now=NOW, batch_size=5).sent == 5
    assert len({r.session for r in smtp_server.messages}) == 1


def test_only_due_rows_are_sent_and_in_batches(smtp_server, account_a):
    alerts = [make_alert(account_a, email=f"r{i}@x.example") for i in range(3)]
    queue_alert_emails(alerts=alerts, now=NOW)
    EmailDelivery.objects.filter(alert=alerts[2]).update(next_attempt_at=NOW + MINUTE)

    assert deliver_due_emails(now=NOW, batch_size=1).sent == 1
    assert deliver_due_emails(now=NOW, batch_size=5).sent == 1
    assert deliver_due_emails(now=NOW, batch_size=5).sent == 0
    assert deliver_due_emails(now=NOW + MINUTE, batch_size=5).sent == 1


def test_a_temporary_refusal_is_retried_with_backoff_then_sent(smtp_server, account_a):
    row = queue_one(account_a, email="ops@customer.example")
    smtp_server.refuse_next(2, "451 4.3.0 Mailbox busy, try again later")

    assert deliver_due_emails(now=NOW) == DeliveryResult(sent=0, failed=0, retried=1)
    row.refresh_from_db()
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 1, NOW + MINUTE)
    assert "451" in row.last_error and "Mailbox busy" in row.last_error

    # Not before its time.
    assert deliver_due_emails(now=NOW + dt.timedelta(seconds=59)) == DeliveryResult(0, 0, 0)

    assert deliver_due_emails(now=NOW + MINUTE).retried == 1
    row.refresh_from_db()
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 2, NOW + 3 * MINUTE)

    assert deliver_due_emails(now=NOW + 3 * MINUTE) == DeliveryResult(sent=1, failed=0, retried=0)
    row.refresh_from_db()
    assert (row.status, row.attempts, row.sent_at, row.last_error) == ("sent", 3, NOW + 3 * MINUTE, "")
    assert smtp_server.message_id_counts() == {row.message_id: 1}


def test_a_refused_connection_is_retried(smtp_server, account_a, settings):
    row = queue_one(account_a, email="ops@customer.example")
    settings.EMAIL_PORT = free_port()  # nothing listens there

    assert deliver_due_emails(now=NOW).retried == 1
    row.refresh_from_db()
    assert row.status == "pending" and row.next_attempt_at == NOW + MINUTE
    assert "ConnectionRefusedError" in row.last_error

    settings.EMAIL_PORT = smtp_server.port
    assert deliver_due_emails(now=NOW + MINUTE).sent == 1
    assert len(smtp_server) == 1


def test_a_batch_goes_on_after_one_message_is_refused(smtp_server, account_a):
    alerts = [make_alert(account_a, email=f"r{i}@x.example") for i in range(3)]
    queue_alert_emails(alerts=alerts, now=NOW)
    smtp_server.refuse_next(1)

    assert deliver_due_emails(now=NOW) == DeliveryResult(sent=2, failed=0, retried=1)


def test_backoff_doubles_and_is_capped():
    assert [backoff(n) for n in range(1, 9)] == [
        dt.timedelta(minutes=m) for m in (1, 2, 4, 8, 16, 32, 60, 60)
    ]


def test_an_email_fails_after_the_maximum_attempts(smtp_server, account_a, settings):
    settings.LIFELINE_EMAIL_MAX_ATTEMPTS = 4
    row = queue_one(account_a, email="ops@customer.example")
    smtp_server.refuse_all("421 4.7.0 Too busy")

    at = NOW
    results = []
    for _ in range(4):
        results.append(deliver_due_emails(now=at))
        row.refresh_from_db()
        at = row.next_attempt_at
    assert results == [DeliveryResult(0, 0, 1)] * 3 + [DeliveryResult(0, 1, 0)]
    assert (row.status, row.attempts) == ("failed", 4)
    assert "421" in row.last_error

    smtp_server.accept_all()
    assert deliver_due_emails(now=NOW + dt.timedelta(days=1)) == DeliveryResult(0, 0, 0)
    assert len(smtp_server) == 0


def test_a_recipient_refused_for_good_fails_at_once(smtp_server, account_a):
    row = queue_one(account_a, email="gone@customer.example")
    smtp_server.refuse_recipient("gone@customer.example", "550 5.1.1 No such user")

    assert deliver_due_emails(now=NOW) == DeliveryResult(sent=0, failed=1, retried=0)
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("failed", 1)
    assert "550" in row.last_error


def test_a_recipient_refused_for_now_is_retried(smtp_server, account_a):
    row = queue_one(account_a, email="full@customer.example")
    smtp_server.refuse_recipient("full@customer.example", "452 4.2.2 Mailbox full")

    assert deliver_due_emails(now=NOW).retried == 1
    row.refresh_from_db()
    assert row.status == "pending"


class WorkerKilled(BaseException):
    """Stands for SIGKILL: nothing after it runs in the worker, no handler catches it."""


class DiesAfterTheServerAccepts:
    """An email backend that sends for real, then dies before the worker can mark the row sent."""

    def __init__(self) -> None:
        self.smtp = get_connection("django.core.mail.backends.smtp.EmailBackend")

    def open(self):
        return self.smtp.open()

    def close(self) -> None:
        self.smtp.close()

    def send_messages(self, messages) -> int:
        self.smtp.send_messages(messages)
        raise WorkerKilled


def test_a_row_claimed_by_a_dead_worker_is_resent_once_and_only_after_the_lease(
    smtp_server, account_a, settings
):
    settings.LIFELINE_EMAIL_LEASE_SECONDS = 600
    row = queue_one(account_a, email="ops@customer.example")
    with pytest.raises(WorkerKilled):
        deliver_due_emails(now=NOW, connection=DiesAfterTheServerAccepts())
    row.refresh_from_db()
    assert (row.status, row.attempts, row.next_attempt_at) == ("sending", 1, NOW + dt.timedelta(minutes=10))
    assert len(smtp_server) == 1

    # While the lease holds, nobody touches it.
    assert deliver_due_emails(now=NOW + dt.timedelta(minutes=9, seconds=59)) == DeliveryResult(0, 0, 0)

    assert deliver_due_emails(now=NOW + dt.timedelta(minutes=10)).sent == 1
    assert deliver_due_emails(now=NOW + dt.timedelta(hours=1)).sent == 0
    # The one unavoidable duplicate, recognisable by its Message-ID.
    assert smtp_server.message_id_counts() == {row.message_id: 2}
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("sent", 2)


def test_a_row_left_sending_on_its_last_attempt_fails(smtp_server, account_a, settings):
    settings.LIFELINE_EMAIL_MAX_ATTEMPTS = 1
    row = queue_one(account_a, email="ops@customer.example")
    with pytest.raises(WorkerKilled):
        deliver_due_emails(now=NOW, connection=DiesAfterTheServerAccepts())

    assert deliver_due_emails(now=NOW + dt.timedelta(hours=1)) == DeliveryResult(sent=0, failed=1, retried=0)
    row.refresh_from_db()
    assert row.status == "failed" and "stopped" in row.last_error
    assert len(smtp_server) == 1


def test_a_batch_that_outlives_half_its_lease_hands_the_rest_back(smtp_server, account_a, settings):
    settings.LIFELINE_EMAIL_LEASE_SECONDS = 0
    row = queue_one(account_a, email="ops@customer.example")

    assert deliver_due_emails(now=NOW) == DeliveryResult(0, 0, 0)
    row.refresh_from_db()
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 0, NOW)
    assert len(smtp_server) == 0


def test_the_task_sends_everything_due(smtp_server, account_a):
    alerts = [make_alert(account_a, email=f"r{i}@x.example") for i in range(60)]
    queue_alert_emails(alerts=alerts, now=NOW)

    assert deliver_emails_task() == 60
    assert deliver_emails_task() == 0
    assert len(smtp_server.message_id_counts()) == 60


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_send_each_email_once(smtp_server):
    account = AccountFactory()
    alerts = [make_alert(account, email=f"r{i}@x.example") for i in range(40)]
    queue_alert_emails(alerts=alerts, now=NOW)
    smtp_server.delay = 0.005
    results: list[DeliveryResult] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            while True:
                result = deliver_due_emails(now=NOW, batch_size=5)
                results.append(result)
                if not result.handled:
                    return
        except BaseException as exc:
            errors.append(exc)
            raise
        finally:
            db_connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors
    assert sum(r.sent for r in results) == 40
    assert set(smtp_server.message_id_counts().values()) == {1}
    assert len(smtp_server.message_id_counts()) == 40
    assert not EmailDelivery.objects.exclude(status="sent").exists()


def test_an_address_django_cannot_encode_fails_without_stopping_the_batch(smtp_server, account_a):
    alerts = [make_alert(account_a, email="ok@x.example"), make_alert(account_a, email="ok2@x.example")]
    queue_alert_emails(alerts=alerts, now=NOW)
    EmailDelivery.objects.filter(alert=alerts[0]).update(to_email="bad\nheader@x.example")

    assert deliver_due_emails(now=NOW) == DeliveryResult(sent=1, failed=1, retried=0)


@pytest.mark.django_db(transaction=True)
def test_marks_commit_without_a_flush_wait_and_the_connection_gets_its_setting_back(smtp_server, monkeypatch):
    account = AccountFactory()
    queue_alert_emails(alerts=[make_alert(account, email=f"r{i}@x.example") for i in range(3)], now=NOW)
    seen: list[str] = []
    real_mark_sent = delivery._mark_sent

    def mark_sent(row, now):
        with db_connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            seen.append(cursor.fetchone()[0])
        real_mark_sent(row, now)

    monkeypatch.setattr(delivery, "_mark_sent", mark_sent)  # a spy: it marks as before

    result = deliver_due_emails(now=NOW)

    assert result.sent == 3 and seen == ["off"] * 3
    assert EmailDelivery.objects.filter(status="sent").count() == 3
    with db_connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"


def test_an_inactive_recipient_gets_no_email_even_with_an_address_on_the_alert(account_a, world):
    world.csm_a.is_active = False
    world.csm_a.save(update_fields=["is_active"])
    alert = make_alert(account_a, recipient=world.csm_a, email="ops@customer.example")

    assert queue_alert_emails(alerts=[alert], now=NOW) == 0
    assert not EmailDelivery.objects.exists()


def test_a_row_queued_with_its_content_is_sent_as_it_was_written(smtp_server, account_a, world):
    """An alert email queued by an earlier release carries its rendering: it is not rendered again."""
    alert = make_alert(account_a, recipient=world.csm_a)
    EmailDelivery.objects.create(
        key=f"alert:{alert.pk}",
        alert=alert,
        to_email="csm_a@example.com",
        subject="Written before",
        text_body="The text as it was queued.\n",
        html_body="<p>As queued</p>",
        next_attempt_at=NOW,
    )

    assert deliver_due_emails(now=NOW).sent == 1

    message = smtp_server.messages[0]
    assert (message.subject, message.text.strip()) == ("Written before", "The text as it was queued.")
    assert EmailDelivery.objects.get().subject == "Written before"


def test_an_alert_that_cannot_be_rendered_fails_on_its_own_row_and_the_batch_goes_out(
    smtp_server, account_a, world, monkeypatch, settings
):
    settings.LIFELINE_EMAIL_MAX_ATTEMPTS = 2
    good = [queue_one(account_a, recipient=user) for user in (world.csm_a, world.csm_a2)]
    bad = queue_one(account_a, email="ops@customer.example", title="Broken")
    real_render = emails.render_alert_email

    def render(**fields):
        if fields["title"] == "Broken":
            raise RuntimeError("the template choked")
        return real_render(**fields)

    monkeypatch.setattr(emails, "render_alert_email", render)

    assert deliver_due_emails(now=NOW) == DeliveryResult(sent=2, failed=0, retried=1)

    assert {m.rcpt_tos for m in smtp_server.messages} == {("csm_a@example.com",), ("csm_a2@example.com",)}
    assert set(
        EmailDelivery.objects.filter(pk__in=[g.pk for g in good]).values_list("status", flat=True)
    ) == {"sent"}
    bad.refresh_from_db()
    assert (bad.status, bad.attempts) == ("pending", 1)
    assert "the template choked" in bad.last_error

    later = bad.next_attempt_at
    assert deliver_due_emails(now=later) == DeliveryResult(sent=0, failed=1, retried=0)
    bad.refresh_from_db()
    assert (bad.status, bad.attempts) == ("failed", 2)
    assert len(smtp_server.messages) == 2
