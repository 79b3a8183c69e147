"""A daily 09:00 Europe/Paris job fires exactly once, at 09:00 local, on both daylight-saving change days.

django-celery-beat's own scheduler entry (``ModelEntry``, what the DatabaseScheduler runs) is
driven by a simulated clock (time-machine) every 30 seconds from noon the day before each 2026 change
day (29 March: 02:00 → 03:00; 25 October: 03:00 → 02:00) to noon the day after, as beat's loop would
ask it; each time it says "due", the firing is recorded and the entry advanced as beat does.
"""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django_celery_beat.models import CrontabSchedule, PeriodicTask
from django_celery_beat.schedulers import ModelEntry

from config.celery import app

PARIS = ZoneInfo("Europe/Paris")
STEP = dt.timedelta(seconds=30)


def firings_between(start: dt.datetime, end: dt.datetime, crontab: CrontabSchedule) -> list[dt.datetime]:
    """When beat would send the task, polling its entry every STEP from ``start`` to ``end``."""
    firings = []
    with time_machine.travel(start, tick=False) as clock:
        task = PeriodicTask.objects.create(
            name="daily 09:00 Paris", task="playbooks.tasks.deliver_emails_task", crontab=crontab
        )
        entry = ModelEntry(task, app=app)
        now = start
        while now < end:
            clock.move_to(now)
            if entry.is_due().is_due:
                firings.append(now.astimezone(PARIS))
                entry = next(entry)
            now += STEP
    return firings


@pytest.mark.parametrize(
    "change_day", [dt.date(2026, 3, 29), dt.date(2026, 10, 25)], ids=["spring-forward", "fall-back"]
)
def test_daily_9am_paris_job_fires_once_at_9_local_on_each_dst_change_day(db, change_day):
    # The local offset really changes that day (the simulation crosses it).
    night_before = dt.datetime.combine(change_day, dt.time(1, 0), PARIS)
    morning = dt.datetime.combine(change_day, dt.time(9, 0), PARIS)
    assert night_before.utcoffset() != morning.utcoffset()
    crontab = CrontabSchedule.objects.create(
        minute="0", hour="9", day_of_week="*", day_of_month="*", month_of_year="*", timezone=PARIS
    )
    start = dt.datetime.combine(change_day - dt.timedelta(days=1), dt.time(12, 0), PARIS)
    end = dt.datetime.combine(change_day + dt.timedelta(days=1), dt.time(12, 0), PARIS)

    firings = firings_between(start, end, crontab)

    expected_days = [change_day, change_day + dt.timedelta(days=1)]
    assert firings == [dt.datetime.combine(day, dt.time(9, 0), PARIS) for day in expected_days]
    assert [firing.hour for firing in firings] == [9, 9]  # local wall-clock time
