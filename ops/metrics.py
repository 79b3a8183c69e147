"""Prometheus metrics: requests counted by this process, and the state of the database read at scrape.

Request counters live in the web process (in gunicorn's multi-process mode, in files under
``PROMETHEUS_MULTIPROC_DIR``, summed at scrape). Everything else — the email outbox, each step's
last run — is read from the database by ``DatabaseCollector`` when Prometheus scrapes, with a fixed
number of small queries, so any number of workers on any machines are seen the same way.
"""

import datetime as dt
import os
from collections.abc import Iterator

from django.conf import settings
from django.db.models import Count, F, Max, Window
from django.db.models.functions import RowNumber
from django.utils import timezone
from kombu import Connection
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY, Collector

from accounts.models import StepRun
from ops.readiness import BROKER_TIMEOUT_SECONDS
from ops.status import PIPELINE_STEPS, SCHEDULED_JOBS, outbox_status

REQUESTS = Counter(
    "lifeline_http_requests",
    "HTTP requests answered, by view (route name), method and status code.",
    ["view", "method", "status"],
)
REQUEST_SECONDS = Histogram(
    "lifeline_http_request_duration_seconds",
    "Time to answer an HTTP request, by view (route name).",
    ["view"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def observe_request(*, view: str, method: str, status: int, seconds: float) -> None:
    REQUESTS.labels(view=view, method=method, status=str(status)).inc()
    REQUEST_SECONDS.labels(view=view).observe(seconds)


def _timestamp(value: dt.datetime | None) -> float:
    return value.timestamp() if value is not None else 0.0


class DatabaseCollector(Collector):
    """The outbox, the pipeline steps and the broker queue, read when scraped."""

    def collect(self) -> Iterator[Metric]:
        yield from self._outbox()
        yield from self._steps()
        yield from self._queues()

    def _outbox(self) -> Iterator[Metric]:
        outbox = outbox_status()
        yield GaugeMetricFamily(
            "lifeline_email_outbox_pending",
            "Emails waiting to be sent (pending or being sent).",
            outbox.pending,
        )
        yield GaugeMetricFamily(
            "lifeline_email_outbox_failed", "Emails given up on after every retry.", outbox.failed
        )
        yield GaugeMetricFamily(
            "lifeline_email_outbox_oldest_pending_age_seconds",
            "Age of the oldest email still waiting (0 when none).",
            outbox.oldest_pending_age_seconds or 0.0,
        )

    def _steps(self) -> Iterator[Metric]:
        last_success = GaugeMetricFamily(
            "lifeline_step_last_success_timestamp_seconds",
            "When each pipeline step last finished successfully (Unix time; 0 if never).",
            labels=["step"],
        )
        last_duration = GaugeMetricFamily(
            "lifeline_step_last_duration_seconds",
            "How long each step's last finished run took.",
            labels=["step"],
        )
        last_failed = GaugeMetricFamily(
            "lifeline_step_last_run_failed", "1 if the step's last finished run failed.", labels=["step"]
        )
        runs = GaugeMetricFamily(
            "lifeline_step_runs_last_24h",
            "Runs of each step in the last 24 hours, by outcome.",
            labels=["step", "outcome"],
        )
        finished = StepRun.objects.exclude(outcome=StepRun.Outcome.RUNNING)
        steps = [step for step, _label in (*PIPELINE_STEPS, *SCHEDULED_JOBS)]
        # Two queries for every step together: the newest success, and the newest finished run.
        successes = dict(
            finished.filter(step__in=steps, outcome=StepRun.Outcome.SUCCEEDED)
            .values("step")
            .annotate(at=Max("finished_at"))
            .values_list("step", "at")
            .order_by()
        )
        newest = {
            row[0]: row[1:]
            for row in finished.filter(step__in=steps)
            .annotate(
                rank=Window(
                    RowNumber(), partition_by=F("step"), order_by=[F("started_at").desc(), F("id").desc()]
                )
            )
            .filter(rank=1)
            .values_list("step", "duration_seconds", "outcome")
        }
        for step in steps:
            last_success.add_metric([step], _timestamp(successes.get(step)))
            if step in newest:
                duration, outcome = newest[step]
                last_duration.add_metric([step], duration or 0.0)
                last_failed.add_metric([step], 1.0 if outcome == StepRun.Outcome.FAILED else 0.0)
        since = timezone.now() - dt.timedelta(hours=24)
        counted = (
            finished.filter(started_at__gte=since)
            .values("step", "outcome")
            .annotate(n=Count("id"))
            .order_by()
        )
        for row in counted:
            runs.add_metric([row["step"], row["outcome"]], row["n"])
        yield from (last_success, last_duration, last_failed, runs)

    def _queues(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("lifeline_broker_up", "1 if the Celery broker answered this scrape.")
        depth = GaugeMetricFamily(
            "lifeline_celery_queue_length", "Tasks waiting in the broker, by queue.", labels=["queue"]
        )
        connection = Connection(
            settings.CELERY_BROKER_URL,
            connect_timeout=BROKER_TIMEOUT_SECONDS,
            transport_options=getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}),
        )
        try:
            channel = connection.default_channel
        except Exception:
            up.add_metric([], 0.0)
        else:
            up.add_metric([], 1.0)
            # Celery's default queue (CELERY_TASK_DEFAULT_QUEUE): what the workers have not taken yet.
            queue = settings.CELERY_TASK_DEFAULT_QUEUE
            depth.add_metric([queue], _queue_length(channel, queue))
        finally:
            connection.release()
        yield up
        yield depth


def _queue_length(channel, queue: str) -> int:
    """Messages waiting in ``queue``; a queue that does not exist (Redis drops empty ones) holds none."""
    try:
        return channel.queue_declare(queue=queue, passive=True).message_count
    except Exception:
        return 0


def exposition() -> bytes:
    """What Prometheus scrapes: this process's (or all gunicorn workers') metrics, then the database's."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        process_registry = CollectorRegistry()
        MultiProcessCollector(process_registry)
    else:
        process_registry = REGISTRY
    database_registry = CollectorRegistry(auto_describe=False)
    database_registry.register(DatabaseCollector())
    return generate_latest(process_registry) + generate_latest(database_registry)
