"""Fixtures for the playbooks tests: a real SMTP server (aiosmtpd) on loopback."""

from collections.abc import Iterator

import pytest

from tests.support.smtp import SMTPSink, start_smtp_sink


@pytest.fixture
def smtp_sink() -> Iterator[SMTPSink]:
    """An SMTP server on 127.0.0.1 (a free port), running in a thread for the test."""
    sink, controller = start_smtp_sink()
    try:
        yield sink
    finally:
        controller.stop()


@pytest.fixture
def smtp_server(smtp_sink: SMTPSink, settings) -> SMTPSink:
    """The SMTP server, with Django's SMTP backend pointed at it."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = smtp_sink.host
    settings.EMAIL_PORT = smtp_sink.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 10
    return smtp_sink
