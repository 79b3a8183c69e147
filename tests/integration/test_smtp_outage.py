"""The SMTP server down: a real worker retries with backoff, sends nothing, and sends all once it is back.

The worker runs with a one-second backoff base (LIFELINE_EMAIL_BACKOFF_SECONDS; 60 in production)
so that the doubling shows within seconds: the delivery task is sent every half second while the
server is down, yet each email is tried only as often as its backoff allows.
"""

import os
import time
from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller
from django.utils import timezone

from playbooks.delivery import backoff
from playbooks.emails import queue_alert_emails
from playbooks.models import EmailDelivery
from playbooks.tasks import deliver_emails_task
from tests.factories import AccountFactory
from tests.support.alerts import alerts_to_outside_addresses
from tests.support.processes import Worker, free_port, process_env
from tests.support.smtp import SMTPSink

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

EMAILS = 30
DOWN_SECONDS = 7.0
DEADLINE_SECONDS = 90


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def worker(port, tmp_path, settings) -> Iterator[Worker]:
    settings.LIFELINE_EMAIL_BACKOFF_SECONDS = 1  # what the worker uses, for backoff() below
    queue = f"smtp-outage-{os.getpid()}-{time.monotonic_ns()}"
    env = process_env(
        tmp_path,
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(port),
        EMAIL_HOST_USER="",
        EMAIL_HOST_PASSWORD="",
        EMAIL_USE_TLS="false",
        EMAIL_TIMEOUT="5",
        LIFELINE_EMAIL_BACKOFF_SECONDS="1",
    )
    worker = Worker(env=env, queue=queue, log_dir=tmp_path)
    worker.start()
    yield worker
    worker.stop()
    print(worker.logs()[-6000:])


def test_smtp_server_down_means_retries_with_backoff_and_every_email_sent_once_when_it_returns(port, worker):
    account = AccountFactory(name="Acme")
    alerts = alerts_to_outside_addresses(account, EMAILS, width=2)
    assert queue_alert_emails(alerts=alerts, now=timezone.now()) == EMAILS
    rows = EmailDelivery.objects.all()

    # The server is down (nothing listens on the port): the beat's schedule keeps asking.
    down_until = time.monotonic() + DOWN_SECONDS
    while time.monotonic() < down_until:
        deliver_emails_task.apply_async(queue=worker.queue)
        time.sleep(0.5)
        assert not worker.is_dead(), worker.logs()
    time.sleep(1)  # the last task's batch finishes

    assert not rows.filter(status=EmailDelivery.Status.SENT).exists()
    attempts = sorted(rows.values_list("attempts", flat=True))
    # ~14 tasks in 7 s, but the waits double (1, 2, 4 s): at most 3 attempts, then one more at 7 s.
    assert attempts[0] >= 2 and attempts[-1] <= 4, attempts
    now = timezone.now()
    for row in rows.all():
        assert row.status == EmailDelivery.Status.PENDING
        assert row.last_error.startswith(f"attempt {row.attempts}: ")
        assert "refused" in row.last_error.lower(), row.last_error
        # Pushed back by the backoff of its last attempt, measured from that attempt.
        assert row.next_attempt_at > now - backoff(row.attempts)
        assert row.next_attempt_at <= now + backoff(row.attempts)

    # The server comes back on the same port; the next scheduled deliveries send everything, once.
    sink = SMTPSink()
    sink.port = port
    controller = Controller(sink, hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while rows.exclude(status=EmailDelivery.Status.SENT).exists():
            assert time.monotonic() < deadline, f"not all sent after the server returned\n{worker.logs()}"
            deliver_emails_task.apply_async(queue=worker.queue)
            time.sleep(0.5)
        time.sleep(2)  # any late duplicate would show now
        counts = sink.message_id_counts()
        assert set(counts) == {row.message_id for row in rows}
        assert set(counts.values()) == {1}
        assert len(sink) == EMAILS
        assert all(row.last_error == "" and row.sent_at is not None for row in rows.all())
    finally:
        controller.stop()
