"""A real Celery worker on Redis delivers the outbox to a real SMTP server, SIGKILLed mid-delivery.

The bound this proves: every email arrives, and the copies beyond the first, summed over all
Message-IDs, are at most the number of kills. A worker sends one message at a time and marks
its row ``sent`` right after the server's 250, so when it dies at most one message can be
accepted by the server and still be ``sending`` in the database; that row alone goes out once
more (same Message-ID) after its lease. Two of the kills here are made by the SMTP server itself
right after it stored a message and before it answered 250, the worst moment, so exactly those
two messages must arrive twice; the third kill comes at an arbitrary moment and may add one.
"""

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.utils import timezone

from playbooks.delivery import deliver_all_due_emails
from playbooks.emails import queue_alert_emails
from playbooks.models import EmailDelivery
from playbooks.tasks import deliver_emails_task
from tests.factories import AccountFactory
from tests.support.alerts import alerts_to_outside_addresses
from tests.support.processes import Worker, process_env
from tests.support.smtp import SMTPSink, start_smtp_sink

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

EMAILS = 200
# Kills made by the SMTP server after storing the n-th message, before answering 250.
KILL_IN_WINDOW_AT = (40, 160)
# A kill made by the test as soon as this many messages have arrived, wherever the worker is.
KILL_ANYWHERE_AT = 100
DEADLINE_SECONDS = 180


@pytest.fixture
def sink(settings) -> Iterator[SMTPSink]:
    sink, controller = start_smtp_sink()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = sink.host, sink.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    try:
        yield sink
    finally:
        controller.stop()


@pytest.fixture
def worker(sink, tmp_path) -> Iterator[Worker]:
    env = process_env(
        tmp_path,
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST=sink.host,
        EMAIL_PORT=str(sink.port),
        EMAIL_HOST_USER="",
        EMAIL_HOST_PASSWORD="",
        EMAIL_USE_TLS="false",
    )
    worker = Worker(env=env, queue=f"test-email-{os.getpid()}-{time.monotonic_ns()}", log_dir=tmp_path)
    yield worker
    worker.stop()
    print(worker.logs())


def expire_leases() -> int:
    """Play the clock forward past the lease of the rows the dead worker had claimed."""
    return EmailDelivery.objects.filter(status=EmailDelivery.Status.SENDING).update(
        next_attempt_at=timezone.now()
    )


def test_a_worker_killed_mid_delivery_loses_nothing_and_resends_at_most_one_email_per_kill(sink, worker):
    account = AccountFactory(name="Acme")
    alerts = alerts_to_outside_addresses(account, EMAILS, width=3)
    assert queue_alert_emails(alerts=alerts, now=timezone.now()) == EMAILS
    expected_ids = {row.message_id for row in EmailDelivery.objects.all()}

    in_window: list[str] = []  # Message-IDs stored by the server when it killed the worker

    def kill_before_answering(stored: int) -> None:
        if stored in KILL_IN_WINDOW_AT:
            in_window.append(sink.messages[stored - 1].message_id)
            worker.kill()

    sink.delay = 0.02  # ~5 s of sending, so the kills land mid-delivery
    sink.after_store = kill_before_answering
    worker.start()
    deliver_emails_task.apply_async(queue=worker.queue)

    killed_anywhere = False
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        assert time.monotonic() < deadline, f"not all delivered in time\n{worker.logs()}"
        if not killed_anywhere and len(sink) >= KILL_ANYWHERE_AT:
            worker.kill()
            killed_anywhere = True
        if worker.is_dead():
            assert worker.kills == worker.starts, f"the worker died on its own\n{worker.logs()}"
            # Restarted right away the worker would leave the dead one's rows alone until their
            # lease expires (tests/playbooks/test_delivery.py shows it); here the clock jumps.
            expire_leases()
            worker.start()
            deliver_emails_task.apply_async(queue=worker.queue)
        if (
            set(sink.message_id_counts()) == expected_ids
            and not EmailDelivery.objects.exclude(status=EmailDelivery.Status.SENT).exists()
        ):
            break
        time.sleep(0.05)

    kills = worker.kills
    assert kills == len(KILL_IN_WINDOW_AT) + 1
    counts = sink.message_id_counts()
    extra = sum(count - 1 for count in counts.values())
    # Nothing lost; every duplicate is a resend of a message in flight at a kill.
    assert set(counts) == expected_ids
    assert len(in_window) <= extra <= kills, (extra, kills)
    assert all(counts[message_id] == 2 for message_id in in_window)
    assert max(counts.values()) <= 2
    assert len(sink) == EMAILS + extra
    # Every copy went to the row's own recipient.
    recipients = dict(EmailDelivery.objects.values_list("to_email", "key"))
    assert all(len(r.rcpt_tos) == 1 and r.rcpt_tos[0] in recipients for r in sink.messages)

    # Success recorded means never again, whoever runs the step.
    assert deliver_all_due_emails().handled == 0
    done = worker.tasks_done()
    deliver_emails_task.apply_async(queue=worker.queue)
    while worker.tasks_done() == done:
        assert time.monotonic() < deadline, f"the last task did not run\n{worker.logs()}"
        time.sleep(0.1)
    assert len(sink) == EMAILS + extra
    print(f"{EMAILS} emails, {kills} kills, {extra} resent ({len(in_window)} forced), {worker.starts} starts")
