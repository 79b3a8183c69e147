"""A real SMTP server (aiosmtpd) for tests: keeps every message it accepts, can refuse on demand."""

import asyncio
import email
import email.policy
import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from tests.support.processes import free_port


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    session: int  # one per SMTP connection
    message: EmailMessage

    @property
    def message_id(self) -> str:
        return self.message["Message-ID"]

    @property
    def subject(self) -> str:
        return self.message["Subject"]

    @property
    def text(self) -> str:
        return self.message.get_body(preferencelist=("plain",)).get_content()

    @property
    def html(self) -> str:
        return self.message.get_body(preferencelist=("html",)).get_content()


# aiosmtpd logs every SMTP command at INFO; the tests read what it stored instead.
logging.getLogger("mail.log").setLevel(logging.WARNING)


class SMTPSink:
    """An aiosmtpd handler that stores what it accepts and can be told to refuse.

    ``refuse_next(n, reply)`` answers the next n messages' DATA with ``reply`` (e.g. a 451);
    ``refuse_all(reply)`` does so until ``accept_all()``; ``refuse_recipient(address, reply)``
    answers RCPT for that address. ``delay`` slows each message down; ``after_store`` is called
    with the number of messages stored so far, after storing one and before answering 250.
    """

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = 0
        self.delay = 0.0
        self.after_store: Callable[[int], None] | None = None
        self._messages: list[Received] = []
        self._lock = threading.Lock()
        self._refusals: list[str] = []
        self._refuse_all: str | None = None
        self._refused_recipients: dict[str, str] = {}

    # --- what the tests read -------------------------------------------------------------

    @property
    def messages(self) -> list[Received]:
        with self._lock:
            return list(self._messages)

    def __len__(self) -> int:
        with self._lock:
            return len(self._messages)

    def message_id_counts(self) -> Counter[str]:
        return Counter(received.message_id for received in self.messages)

    # --- how the server behaves -----------------------------------------------------------

    def refuse_next(self, count: int, reply: str = "451 4.3.0 Try again later") -> None:
        with self._lock:
            self._refusals.extend([reply] * count)

    def refuse_all(self, reply: str = "451 4.3.0 Try again later") -> None:
        self._refuse_all = reply

    def accept_all(self) -> None:
        self._refuse_all = None
        with self._lock:
            self._refusals.clear()

    def refuse_recipient(self, address: str, reply: str = "550 5.1.1 No such user") -> None:
        self._refused_recipients[address.lower()] = reply

    # --- aiosmtpd hooks -------------------------------------------------------------------

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self._refused_recipients.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        with self._lock:
            if self._refuse_all:
                return self._refuse_all
            if self._refusals:
                return self._refusals.pop(0)
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            self._messages.append(
                Received(envelope.mail_from, tuple(envelope.rcpt_tos), id(session), message)
            )
            stored = len(self._messages)
        if self.after_store is not None:
            self.after_store(stored)
        return "250 2.0.0 OK"


def start_smtp_sink() -> tuple[SMTPSink, Controller]:
    """An SMTP server on 127.0.0.1 (a free port), running in a thread; stop the controller after."""
    sink = SMTPSink()
    sink.port = free_port()
    controller = Controller(sink, hostname=sink.host, port=sink.port, ready_timeout=10)
    controller.start()
    return sink, controller
