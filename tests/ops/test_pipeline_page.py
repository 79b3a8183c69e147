"""The pipeline status page: admins see each step's last run, what it changed and any failure."""

import datetime as dt

from django.utils import timezone

from accounts.models import StepRun
from playbooks.models import EmailDelivery

URL = "/ops/pipeline/"


def make_run(step: str, *, minutes_ago: int, outcome: str = "succeeded", counts=None, error: str = ""):
    started = timezone.now() - dt.timedelta(minutes=minutes_ago)
    return StepRun.objects.create(
        step=step,
        started_at=started,
        finished_at=started + dt.timedelta(seconds=2),
        duration_seconds=2.0,
        outcome=outcome,
        counts=counts or {},
        error=error,
    )


def test_admin_sees_each_steps_last_run_changes_and_failure(client, world, django_assert_max_num_queries):
    make_run("health.recompute", minutes_ago=30, counts={"accounts": 12, "bands": {"red": 3, "green": 9}})
    make_run("playbooks.evaluate", minutes_ago=20, counts={"fired": 4, "tasks_created": 2, "alerts": 0})
    make_run("journeys.evaluate", minutes_ago=15, outcome="failed", error="OperationalError: server closed")
    EmailDelivery.objects.create(
        key="k1", to_email="x@example.com", subject="s", text_body="t", next_attempt_at=timezone.now()
    )
    client.force_login(world.admin)

    make_run("playbooks.digests.daily", minutes_ago=40, counts={"queued": 3})
    with django_assert_max_num_queries(40):
        response = client.get(URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert "Pipeline status" in html
    assert "accounts 12" in html
    assert "bands: red 3, green 9" in html
    assert "fired 4 · tasks created 2" in html
    assert "alerts 0" not in html
    assert "OperationalError: server closed" in html
    assert "Never run." in html  # delivery has no run yet
    assert "1 email waiting" in html
    assert "Other scheduled jobs" in html
    assert "Daily CSM digests" in html and "queued 3" in html


def test_the_page_is_for_admins_only(client, world):
    assert client.get(URL).status_code == 302  # to the login page

    client.force_login(world.manager_a)
    assert client.get(URL).status_code == 403

    client.force_login(world.csm_a)
    assert client.get(URL).status_code == 403
