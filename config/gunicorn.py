"""gunicorn settings for production (``gunicorn config.wsgi -c config/gunicorn.py``), from the environment."""

import multiprocessing
import os
import tempfile
from pathlib import Path

# Imported here, not in child_exit: an import inside a signal handler can fail at shutdown.
from prometheus_client import multiprocess

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"  # noqa: S104 - behind a proxy
# Sync workers: pages and the API are short database-bound requests. 2-4 per core is usual.
workers = int(os.environ.get("WEB_CONCURRENCY", min(2 * multiprocessing.cpu_count() + 1, 8)))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
# An events batch of 10,000 rows takes a few seconds; anything near 60 s is a bug, not a load.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then so a slow leak cannot grow for months.
max_requests = 2000
max_requests_jitter = 200
# The proxy in front sets X-Forwarded-*; trust it only from where it runs.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = "-"
errorlog = "-"
# No client addresses and no query strings (search terms) in the access log: no personal data.
access_log_format = '"%(m)s %(U)s" %(s)s %(B)s %(M)sms "%({x-request-id}o)s"'
if os.environ.get("LOG_FORMAT") == "json":
    access_log_format = (
        '{"time": "%(t)s", "logger": "gunicorn.access", "method": "%(m)s", "path": "%(U)s", '
        '"status": %(s)s, "bytes": "%(B)s", "ms": %(M)s, "request_id": "%({x-request-id}o)s"}'
    )

# Prometheus: each worker writes its request counters to files here; /metrics sums them. Set
# before the workers import the app (they inherit it); a fresh directory for each start.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="lifeline-metrics-"))


def on_starting(server) -> None:
    """Forget the counters of a previous run that used the same directory."""
    for stale in Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).glob("*.db"):
        stale.unlink()


def child_exit(server, worker) -> None:
    multiprocess.mark_process_dead(worker.pid)
