"""Fixtures shared by the integration tests that run real processes."""

from collections.abc import Iterator

import pytest

from tests.support.smtp import SMTPSink, start_smtp_sink


@pytest.fixture
def sink() -> Iterator[SMTPSink]:
    """A real SMTP server (aiosmtpd) on a free port, stopped after the test."""
    sink, controller = start_smtp_sink()
    yield sink
    controller.stop()
