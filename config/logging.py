"""Log records as one JSON object a line (``LOG_FORMAT=json``), with the request id and account id.

The request id comes from ``X-Request-ID`` (set by the proxy, or made here) in the web process and
is the task id in a Celery worker; the account id is set while a request is about one account.
Only the message and these fields are written — never the request object, headers, bodies or
query strings — and email addresses in messages are masked, so logs carry no secrets or
personal data. Loaded by ``LOGGING`` before the apps, so it imports nothing of Django's apps.
"""

import contextvars
import datetime as dt
import json
import logging
import re

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
account_id: contextvars.ContextVar[int | None] = contextvars.ContextVar("account_id", default=None)

EMAIL = re.compile(r"[\w.+-]+@([\w-]+\.[\w.-]+)")


def mask_emails(text: str) -> str:
    """``ann@example.com`` → ``***@example.com``: the domain helps debugging, the person is gone."""
    return EMAIL.sub(r"***@\1", text)


class ContextFilter(logging.Filter):
    """Put the current request id and account id on every record (for any formatter)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get() or "-"
        record.account_id = account_id.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask_emails(record.getMessage()),
        }
        for key in ("request_id", "account_id"):
            value = getattr(record, key, None)
            if value not in (None, "-"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = mask_emails(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)
