"""The delivery step: send what the outbox holds, at most once more after a crash, never after success.

A batch is claimed in one short transaction (``SELECT … FOR UPDATE SKIP LOCKED``): each row is
marked ``sending``, its attempt counted, and its ``next_attempt_at`` moved forward by a lease,
all before any SMTP traffic. Then each row is sent and marked ``sent`` right after the server
accepts it. So:

- two workers never claim the same row (the row lock, then the status and the lease);
- a row marked ``sent`` is never claimed again;
- a worker killed after the server accepted a message but before it marked the row leaves it
  ``sending`` with the lease ahead; another worker re-sends it once the lease has expired. That
  one resend is the only duplicate there can be, and it carries the same Message-ID as the first.
  A batch is sent one message at a time, so a kill can leave at most one message in that state.
  (The marks commit without waiting for their WAL flush: only a crash of the PostgreSQL server
  itself can lose the marks of its last fraction of a second, and resend those messages once.)
- transient errors (SMTP, network, timeouts) put the row back to ``pending`` with exponential
  backoff, until ``LIFELINE_EMAIL_MAX_ATTEMPTS`` attempts; a recipient the server refuses for
  good (5xx) fails at once.
"""

import datetime as dt
import logging
import smtplib
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import reduce
from operator import or_

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.db import DatabaseError, transaction
from django.db import connection as db_connection
from django.db.models import F, Q
from django.utils import timezone

from playbooks.emails import render_alert_emails
from playbooks.models import EmailDelivery

logger = logging.getLogger(__name__)

Status = EmailDelivery.Status

# Settings (with these defaults): how long a claim holds a row, how often to try.
DEFAULT_LEASE_SECONDS = 10 * 60
DEFAULT_MAX_ATTEMPTS = 8
# Backoff after the n-th failed attempt: 1, 2, 4, 8 … minutes (LIFELINE_EMAIL_BACKOFF_SECONDS
# the first), never more than an hour.
BACKOFF_BASE = dt.timedelta(minutes=1)
BACKOFF_CAP = dt.timedelta(hours=1)
LAST_ERROR_MAX_LENGTH = 2000


@dataclass
class DeliveryResult:
    sent: int = 0
    failed: int = 0
    retried: int = 0

    @property
    def handled(self) -> int:
        return self.sent + self.failed + self.retried


class PermanentDeliveryError(Exception):
    """The server refused this message for good; trying again will not help."""


def lease_duration() -> dt.timedelta:
    return dt.timedelta(seconds=getattr(settings, "LIFELINE_EMAIL_LEASE_SECONDS", DEFAULT_LEASE_SECONDS))


def max_attempts() -> int:
    return getattr(settings, "LIFELINE_EMAIL_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS)


def backoff(attempts: int) -> dt.timedelta:
    """How long to wait after the ``attempts``-th failed attempt."""
    base = dt.timedelta(
        seconds=getattr(settings, "LIFELINE_EMAIL_BACKOFF_SECONDS", BACKOFF_BASE.total_seconds())
    )
    return min(base * 2 ** max(0, attempts - 1), BACKOFF_CAP)


def _claim(*, now: dt.datetime, batch_size: int, lease_until: dt.datetime) -> tuple[list[EmailDelivery], int]:
    """Take due rows for this worker; return them and how many were given up on."""
    with transaction.atomic():
        rows = list(
            EmailDelivery.objects.select_for_update(skip_locked=True)
            .filter(status__in=[Status.PENDING, Status.SENDING], next_attempt_at__lte=now)
            .order_by("next_attempt_at", "id")[:batch_size]
        )
        # A row still "sending" after its lease on its last attempt: its worker died that often.
        exhausted = [row.pk for row in rows if row.attempts >= max_attempts()]
        if exhausted:
            EmailDelivery.objects.filter(pk__in=exhausted).update(
                status=Status.FAILED,
                last_error="Gave up: the worker sending it stopped before it was marked sent.",
            )
        claimed = [row for row in rows if row.pk not in exhausted]
        EmailDelivery.objects.filter(pk__in=[row.pk for row in claimed]).update(
            status=Status.SENDING, attempts=F("attempts") + 1, next_attempt_at=lease_until
        )
    for row in claimed:
        row.status, row.attempts, row.next_attempt_at = Status.SENDING, row.attempts + 1, lease_until
    return claimed, len(exhausted)


def build_message(row: EmailDelivery, connection: BaseEmailBackend | None = None) -> EmailMultiAlternatives:
    """The email for an outbox row: text and HTML parts, and a Message-ID that survives a resend."""
    message = EmailMultiAlternatives(
        subject=row.subject,
        body=row.text_body,
        to=[row.to_email],
        connection=connection,
        headers={"Message-ID": row.message_id, "Auto-Submitted": "auto-generated"},
    )
    if row.html_body:
        message.attach_alternative(row.html_body, "text/html")
    return message


def _is_permanent(exc: Exception) -> bool:
    """The server said no for good to this message (5xx on its recipient or its data)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPDataError):
        return exc.smtp_code >= 500
    # ValueError: an address Django cannot encode; the row will not get better.
    return isinstance(exc, PermanentDeliveryError | ValueError)


def _send(connection: BaseEmailBackend, message: EmailMultiAlternatives) -> None:
    if connection.send_messages([message]) != 1:
        raise PermanentDeliveryError("The backend sent nothing (no valid recipient).")


def _close_quietly(connection: BaseEmailBackend) -> None:
    try:
        connection.close()
    except (smtplib.SMTPException, OSError):
        logger.info("Closing the SMTP connection failed; it is dropped.", exc_info=True)


def _mark_sent(row: EmailDelivery, now: dt.datetime) -> None:
    # Whoever holds the row now, it went out: never send it again. The subject is kept (an
    # alert email's is rendered when sent) for the outbox's list in the admin.
    EmailDelivery.objects.filter(pk=row.pk).exclude(status=Status.SENT).update(
        status=Status.SENT, sent_at=now, last_error="", subject=row.subject
    )


def _mark_failed_attempt(row: EmailDelivery, exc: Exception, now: dt.datetime) -> bool:
    """Back off, or give up; return True if the row failed for good."""
    error = f"attempt {row.attempts}: {type(exc).__name__}: {exc}"[:LAST_ERROR_MAX_LENGTH]
    give_up = _is_permanent(exc) or row.attempts >= max_attempts()
    # Only if this claim still holds the row (same attempt): a worker that overran its lease
    # must not undo a newer claim.
    mine = EmailDelivery.objects.filter(pk=row.pk, status=Status.SENDING, attempts=row.attempts)
    # The subject is kept as for a sent row (an alert email's is rendered when sent, if it was).
    if give_up:
        mine.update(status=Status.FAILED, last_error=error, subject=row.subject)
    else:
        mine.update(
            status=Status.PENDING,
            next_attempt_at=now + backoff(row.attempts),
            last_error=error,
            subject=row.subject,
        )
    return give_up


def _count_failed_attempt(
    row: EmailDelivery, exc: Exception, now: dt.datetime, result: DeliveryResult
) -> None:
    """``_mark_failed_attempt``, counted in ``result`` and logged."""
    if _mark_failed_attempt(row, exc, now):
        result.failed += 1
        logger.warning("Email %s failed for good: %s", row.key, exc)
    else:
        result.retried += 1
        logger.info("Email %s will be retried: %s", row.key, exc)


def _release(rows: Sequence[EmailDelivery], now: dt.datetime) -> None:
    """Hand back claimed rows this worker will not send, as if never claimed."""
    if not rows:
        return
    mine = reduce(or_, (Q(pk=row.pk, attempts=row.attempts) for row in rows))
    EmailDelivery.objects.filter(mine, status=Status.SENDING).update(
        status=Status.PENDING, attempts=F("attempts") - 1, next_attempt_at=now
    )


@contextmanager
def _marks_without_flush_wait() -> Iterator[None]:
    """PostgreSQL: the per-message marks below commit without waiting for their WAL flush.

    A mark per message keeps a killed worker's resend to one message, but a flush per mark cost
    ~7 ms, most of the step (4,490 emails: 30 s). The claim before it stays synchronous. What
    this gives up: if the PostgreSQL server itself crashes, the marks of the last fraction of a
    second (``wal_writer_delay`` x 3) may be lost, and those messages are resent once after their
    lease, with the same Message-ID, as after a killed worker. A worker crash loses nothing.
    """
    if db_connection.vendor != "postgresql" or db_connection.in_atomic_block:
        yield
        return
    with db_connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO OFF")
    try:
        yield
    finally:
        try:
            with db_connection.cursor() as cursor:
                cursor.execute("RESET synchronous_commit")
        except DatabaseError:
            # The connection broke (what the caller is raising about); Django drops it.
            logger.info("Could not reset synchronous_commit; the connection is discarded.", exc_info=True)


def deliver_due_emails(
    *, now: dt.datetime, batch_size: int = 50, connection: BaseEmailBackend | None = None
) -> DeliveryResult:
    """Claim up to ``batch_size`` due emails, send them over one connection. Safe to run anywhere, twice."""
    lease = lease_duration()
    rows, exhausted = _claim(now=now, batch_size=batch_size, lease_until=now + lease)
    result = DeliveryResult(failed=exhausted)
    if not rows:
        return result
    # An alert email's row holds the alert, not the email. One that cannot be rendered counts as
    # a failed attempt (its error kept), as a refused send would; the rest of the batch goes on.
    unrendered = render_alert_emails(rows)
    for row in rows:
        error = unrendered.get(row.pk)
        if error is None:
            continue  # rendered (or its alert was deleted, and its outbox row with it)
        _count_failed_attempt(row, error, now, result)
    rows = [row for row in rows if row.pk not in unrendered]
    with _marks_without_flush_wait():
        _send_claimed(rows, result, now=now, lease=lease, connection=connection)
    return result


def _send_claimed(
    rows: list[EmailDelivery],
    result: DeliveryResult,
    *,
    now: dt.datetime,
    lease: dt.timedelta,
    connection: BaseEmailBackend | None,
) -> None:
    """Send the claimed rows one by one, marking each as it goes; counts go into ``result``."""
    connection = connection or get_connection(fail_silently=False)
    # Stop well before the lease runs out (slow server, timeouts): past it, another worker may
    # claim the rows still to send, and they would go out twice.
    stop_at = time.monotonic() + lease.total_seconds() / 2
    try:
        for index, row in enumerate(rows):
            if time.monotonic() > stop_at:
                _release(rows[index:], now)
                logger.warning("Delivery batch overran half its lease; released %d rows.", len(rows) - index)
                break
            try:
                connection.open()  # a no-op while open; reconnects after an error closed it
                _send(connection, build_message(row, connection))
            except (smtplib.SMTPException, OSError, PermanentDeliveryError, ValueError) as exc:
                _close_quietly(connection)
                _count_failed_attempt(row, exc, now, result)
            except Exception:
                # A bug, not the network: this row keeps its lease (and fails after enough
                # tries); the rest of the batch goes back at once instead of waiting for it.
                _release(rows[index + 1 :], now)
                raise
            else:
                _mark_sent(row, now)
                result.sent += 1
    finally:
        _close_quietly(connection)


def deliver_all_due_emails(*, batch_size: int = 50, max_batches: int = 100) -> DeliveryResult:
    """Deliver batch after batch until nothing is due (or ``max_batches``): the delivery step."""
    total = DeliveryResult()
    for _ in range(max_batches):
        result = deliver_due_emails(now=timezone.now(), batch_size=batch_size)
        total.sent += result.sent
        total.failed += result.failed
        total.retried += result.retried
        if result.handled < batch_size:
            break
    return total
