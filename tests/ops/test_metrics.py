"""/metrics: requests by view and status, the outbox, each step's last success and duration, the queue."""

import datetime as dt
import re

from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from accounts.models import StepRun
from playbooks.models import EmailDelivery


def scrape(client, **headers) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def email(key: str, status: str, *, created_minutes_ago: int = 0) -> EmailDelivery:
    row = EmailDelivery.objects.create(
        key=key,
        to_email="x@example.com",
        subject="s",
        text_body="t",
        status=status,
        next_attempt_at=timezone.now(),
    )
    created = timezone.now() - dt.timedelta(minutes=created_minutes_ago)
    EmailDelivery.objects.filter(pk=row.pk).update(created_at=created)
    return row


def test_requests_are_counted_by_view_and_status(db, client):
    before = scrape(client)
    client.get("/healthz")
    client.get("/healthz")
    client.get("/no-such-page/")

    after = scrape(client)
    ok = value(after, "lifeline_http_requests_total", view="healthz", method="GET", status="200")
    assert (
        ok - (value(before, "lifeline_http_requests_total", view="healthz", method="GET", status="200") or 0)
        == 2
    )
    assert value(after, "lifeline_http_requests_total", view="unmatched", method="GET", status="404") >= 1
    assert value(after, "lifeline_http_request_duration_seconds_count", view="healthz") >= 2
    # Labels are route names, never paths (which could carry ids or search terms).
    assert not any("/no-such-page/" in str(key) for key in after)


def test_outbox_backlog_and_failures(db, client):
    email("a", "pending", created_minutes_ago=30)
    email("b", "sending")
    email("c", "failed")
    email("d", "sent")

    samples = scrape(client)

    assert value(samples, "lifeline_email_outbox_pending") == 2
    assert value(samples, "lifeline_email_outbox_failed") == 1
    assert 29 * 60 <= value(samples, "lifeline_email_outbox_oldest_pending_age_seconds") <= 31 * 60


def test_each_steps_last_success_duration_and_failure_with_bounded_queries(
    db, client, django_assert_max_num_queries
):
    done = timezone.now() - dt.timedelta(minutes=10)
    StepRun.objects.create(
        step="health.recompute",
        started_at=done - dt.timedelta(seconds=4),
        finished_at=done,
        duration_seconds=4.0,
        outcome="succeeded",
    )
    StepRun.objects.create(
        step="health.recompute",
        started_at=done + dt.timedelta(minutes=5),
        finished_at=done + dt.timedelta(minutes=6),
        duration_seconds=60.0,
        outcome="failed",
        error="boom",
    )

    with django_assert_max_num_queries(15):
        samples = scrape(client)

    assert (
        value(samples, "lifeline_step_last_success_timestamp_seconds", step="health.recompute")
        == done.timestamp()
    )
    assert value(samples, "lifeline_step_last_success_timestamp_seconds", step="journeys.evaluate") == 0
    assert value(samples, "lifeline_step_last_duration_seconds", step="health.recompute") == 60.0
    assert value(samples, "lifeline_step_last_run_failed", step="health.recompute") == 1
    assert value(samples, "lifeline_step_runs_last_24h", step="health.recompute", outcome="failed") == 1
    assert value(samples, "lifeline_step_runs_last_24h", step="health.recompute", outcome="succeeded") == 1


def test_broker_queue_length_and_a_stopped_broker(db, client, settings):
    samples = scrape(client)
    assert value(samples, "lifeline_broker_up") == 1
    assert value(samples, "lifeline_celery_queue_length", queue="celery") >= 0

    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    samples = scrape(client)
    assert value(samples, "lifeline_broker_up") == 0
    assert value(samples, "lifeline_email_outbox_pending") == 0  # the rest still answers


def test_a_metrics_token_is_required_when_configured(db, client, settings):
    settings.LIFELINE_METRICS_TOKEN = "s3cret-token"

    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert scrape(client, HTTP_AUTHORIZATION="Bearer s3cret-token")


def test_metric_names_carry_no_personal_data(db, client):
    email("a", "pending")
    body = client.get("/metrics").content.decode()
    assert "x@example.com" not in body
    assert not re.search(r"password|secret", body, re.IGNORECASE)
