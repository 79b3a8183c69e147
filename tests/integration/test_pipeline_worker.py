"""The pipeline from beat's schedule on a real worker, Redis and SMTP server, with two beats.

Two beat processes both send the scheduled pipeline every few seconds (as two misconfigured
hosts would); each step's lock and idempotency keys leave exactly one task, one alert and one
email per occurrence, and the manager's alert email arrives with the account in it.
"""

import datetime as dt
import time
from collections.abc import Iterator

import pytest
import redis
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from playbooks.models import Alert, EmailDelivery, Playbook, Task
from tests.factories import AccountFactory, TeamFactory, UserFactory
from tests.support.processes import Beat, Worker, process_env

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# A Redis database of its own: the chain's tasks go to the default queue.
BROKER_URL = "redis://127.0.0.1:6379/14"


@pytest.fixture
def processes(default_configuration, sink, tmp_path) -> Iterator[list[Worker]]:
    redis.Redis.from_url(BROKER_URL).flushdb()
    env = process_env(
        tmp_path,
        CELERY_BROKER_URL=BROKER_URL,
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST=sink.host,
        EMAIL_PORT=str(sink.port),
        EMAIL_USE_TLS="false",
    )
    started = [
        Worker(env=env, queue="celery", log_dir=tmp_path, name="worker"),
        Beat(env=env, queue="", log_dir=tmp_path, name="beat-a"),
        Beat(env=env, queue="", log_dir=tmp_path, name="beat-b"),
    ]
    yield started
    for process in started:
        process.stop()
    for process in started:
        print(process.logs()[-4000:])


def test_scheduled_pipeline_with_two_beats_acts_once_and_emails_the_manager(sink, processes):
    manager = UserFactory(username="mia", email="mia@example.com", role="manager")
    csm = UserFactory(username="carl", email="carl@example.com", role="csm")
    team = TeamFactory(name="North", manager=manager)
    team.members.add(csm)
    today = timezone.localdate()
    account = AccountFactory(
        name="Umbrella Corp",
        owner=csm,
        team=team,
        contract_start=today - dt.timedelta(days=400),
        renewal_date=today + dt.timedelta(days=30),
    )
    Playbook.objects.update(active_since=timezone.now() - dt.timedelta(days=1))
    every_3s, _ = IntervalSchedule.objects.get_or_create(every=3, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(
        name="pipeline (test)", task="playbooks.tasks.run_pipeline_task", interval=every_3s, expire_seconds=30
    )
    for process in processes:
        process.start()

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any("mia@example.com" in m.rcpt_tos for m in sink.messages):
        time.sleep(0.5)
    time.sleep(12)  # several more scheduled runs from both beats

    to_manager = [m for m in sink.messages if "mia@example.com" in m.rcpt_tos]
    assert to_manager, "the manager's alert email never arrived"
    assert "Umbrella Corp" in to_manager[0].subject
    assert f"/accounts/{account.pk}/" in to_manager[0].text
    assert all(count == 1 for count in sink.message_id_counts().values())
    renewal_tasks = Task.objects.filter(account=account, playbook__trigger="renewal_within")
    assert sorted(renewal_tasks.values_list("playbook__name", flat=True)) == [
        "Renewal prep (120 days)",
        "Renewal prep (60 days)",
    ]
    assert renewal_tasks.filter(assignee=csm).count() == 2
    manager_alerts = list(
        Alert.objects.filter(account=account, recipient=manager).values_list("playbook__name", flat=True)
    )
    assert "Renewal prep (60 days)" in manager_alerts
    assert len(manager_alerts) == len(set(manager_alerts))  # one per playbook, however many runs
    assert EmailDelivery.objects.filter(status="sent").count() == len(sink.messages)
    beat_logs = "".join(p.logs() for p in processes if p.name.startswith("beat"))
    assert beat_logs.count("Sending due task pipeline (test)") >= 4
