"""Structured logs: one JSON object a line, with the request id and account id, no personal data."""

import io
import json
import logging

import pytest

from config.logging import ContextFilter, JsonFormatter


@pytest.fixture
def json_log():
    """What django.request writes through a JSON handler, as parsed lines."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)


def test_every_response_has_a_request_id_and_a_sane_one_from_the_proxy_is_kept(client):
    made = client.get("/healthz")["X-Request-ID"]
    assert len(made) == 32

    assert client.get("/healthz", HTTP_X_REQUEST_ID="abc-123.x_y")["X-Request-ID"] == "abc-123.x_y"
    replaced = client.get("/healthz", HTTP_X_REQUEST_ID="bad id\nwith newline")["X-Request-ID"]
    assert replaced != "bad id\nwith newline" and len(replaced) == 32


def test_log_lines_carry_the_request_id_and_the_account_id(client, world, json_log):
    client.force_login(world.admin)

    response = client.get("/accounts/987654/", HTTP_X_REQUEST_ID="req-42")

    assert response.status_code == 404
    [line] = [entry for entry in json_log() if entry["logger"] == "django.request"]
    assert line["request_id"] == "req-42"
    assert line["account_id"] == 987654
    assert line["level"] == "WARNING"
    assert line["message"] == "Not Found: /accounts/987654/"
    assert set(line) == {"time", "level", "logger", "message", "request_id", "account_id"}


def test_emails_are_masked_and_exceptions_kept(json_log):
    logger = logging.getLogger("django.request")
    try:
        raise ValueError("refused ann.smith@example.com")
    except ValueError:
        logger.exception("sending to %s failed", "ann.smith@example.com")

    [line] = json_log()
    assert line["message"] == "sending to ***@example.com failed"
    assert "ann.smith" not in line["exception"]
    assert "ValueError: refused ***@example.com" in line["exception"]
    assert "request_id" not in line  # outside a request
