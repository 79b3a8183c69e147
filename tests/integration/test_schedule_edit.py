"""A schedule edited in the Django admin takes effect in a running beat within a minute, no restart.

Beat runs as in production (the DatabaseScheduler's own loop, no --max-interval): it looks for
changes to the periodic tasks every few seconds. A task scheduled for 03:00 on the 1st of
January is moved, through the admin's change form, to every 2 seconds; beat sends it soon after
(well under a minute) and never before. Then it is disabled in the admin, and beat stops.
"""

import os
import re
import time
from collections.abc import Iterator

import pytest
import redis
from django.conf import settings
from django.urls import reverse
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from tests.accounts.test_admin import form_data
from tests.factories import UserFactory
from tests.support.processes import Beat, process_env

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

TAKES_EFFECT_WITHIN = 60.0  # seconds: the promise
SENT = re.compile(r"Sending due task probe \(admin edit\)")


@pytest.fixture
def beat(tmp_path) -> Iterator[Beat]:
    queue = f"schedule-edit-{os.getpid()}-{time.monotonic_ns()}"  # nothing consumes it; deleted after
    beat = Beat(env=process_env(tmp_path, CELERY_TASK_DEFAULT_QUEUE=queue), queue=queue, log_dir=tmp_path)
    beat.max_interval = None
    yield beat
    beat.stop()
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(queue)
    print(beat.logs()[-4000:])


def wait_for(condition, seconds: float, what: str, beat: Beat) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, f"{what} not within {seconds:.0f} s\n{beat.logs()}"
        time.sleep(0.2)
    return time.monotonic() - started


def test_a_schedule_changed_in_the_admin_takes_effect_in_a_running_beat_within_a_minute(client, beat):
    new_year_3am, _ = CrontabSchedule.objects.get_or_create(
        minute="0", hour="3", day_of_month="1", month_of_year="1", day_of_week="*", timezone="UTC"
    )
    every_2s, _ = IntervalSchedule.objects.get_or_create(every=2, period=IntervalSchedule.SECONDS)
    probe = PeriodicTask.objects.create(
        name="probe (admin edit)", task="playbooks.tasks.deliver_emails_task", crontab=new_year_3am
    )
    beat.start()
    wait_for(lambda: "beat: Starting..." in beat.current_log(), 60, "beat's start", beat)
    time.sleep(6)  # more than one of beat's loops: it has read the schedule
    assert not SENT.search(beat.current_log())

    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    url = reverse("admin:django_celery_beat_periodictask_change", args=[probe.pk])
    data = form_data(client.get(url))
    data.update(crontab="", interval=str(every_2s.pk))
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    probe.refresh_from_db()
    assert (probe.interval, probe.crontab) == (every_2s, None)

    took = wait_for(lambda: SENT.search(beat.current_log()), TAKES_EFFECT_WITHIN, "the new schedule", beat)
    wait_for(lambda: len(SENT.findall(beat.current_log())) >= 3, 20, "three sends every 2 s", beat)
    print(f"the edited schedule took effect after {took:.1f} s")

    # Disabled in the admin: beat stops sending it, again without a restart.
    data = form_data(client.get(url))
    data.pop("enabled", None)
    assert client.post(url, data).status_code == 302
    assert PeriodicTask.objects.get(pk=probe.pk).enabled is False
    time.sleep(6)  # beat's loop (5 s) has seen the change
    sends = len(SENT.findall(beat.current_log()))
    time.sleep(5)
    assert len(SENT.findall(beat.current_log())) == sends
    assert beat.starts == 1
