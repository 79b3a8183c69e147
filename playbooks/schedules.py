"""The beat schedule, in code and in one place, installed into django-celery-beat's tables.

Installing is idempotent and keeps what an admin changed in the admin (times, enabled) unless
asked to reset. Each entry expires (``expire_seconds``) so a backlog after an outage does not
run the same step many times over.
"""

from dataclasses import dataclass

from django.db import transaction
from django_celery_beat.models import CrontabSchedule, PeriodicTask


@dataclass(frozen=True)
class Schedule:
    name: str
    task: str
    minute: str = "*"
    hour: str = "*"
    day_of_week: str = "*"
    expire_seconds: int = 600
    description: str = ""


SCHEDULES: tuple[Schedule, ...] = (
    Schedule(
        "Lifeline pipeline",
        "playbooks.tasks.run_pipeline_task",
        minute="*/15",
        expire_seconds=14 * 60,
        description="journeys → health → playbooks → delivery, every 15 minutes (changed accounts rescored)",
    ),
    Schedule(
        "Lifeline full rescore",
        "playbooks.tasks.run_full_pipeline_task",
        minute="5",
        hour="2",
        expire_seconds=6 * 3600,
        description="The pipeline rescoring every active account: windowed metrics move with time alone",
    ),
    Schedule(
        "Lifeline email delivery",
        "playbooks.tasks.deliver_emails_task",
        minute="*",
        expire_seconds=55,
        description="Send due emails from the outbox (retries with backoff)",
    ),
    Schedule(
        "Lifeline daily CSM digest",
        "playbooks.tasks.send_daily_digests_task",
        minute="0",
        hour="7",
        expire_seconds=3 * 3600,
        description="Each CSM's open and overdue tasks, new alerts, band changes",
    ),
    Schedule(
        "Lifeline weekly renewal digest",
        "playbooks.tasks.send_weekly_digests_task",
        minute="0",
        hour="7",
        day_of_week="1",
        expire_seconds=6 * 3600,
        description="Renewals of the next 90 days to each manager, on Mondays",
    ),
    Schedule(
        "Lifeline event retention",
        "accounts.tasks.prune_events_task",
        minute="30",
        hour="3",
        expire_seconds=6 * 3600,
        description="Delete raw events older than LIFELINE_EVENT_RETENTION_DAYS (rollups kept; 0 keeps all)",
    ),
    Schedule(
        "Lifeline renewal forecast",
        "health.tasks.renewal_forecast_task",
        minute="15",
        hour="4",
        expire_seconds=6 * 3600,
        description="Learn renewal rates per band and keep the 90- and 30-day forecasts",
    ),
)


@transaction.atomic
def install_schedules(*, reset: bool = False) -> list[str]:
    """Create the periodic tasks that are missing (all of them again with ``reset``); return their names."""
    from django.conf import settings

    installed = []
    for schedule in SCHEDULES:
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=schedule.minute,
            hour=schedule.hour,
            day_of_week=schedule.day_of_week,
            day_of_month="*",
            month_of_year="*",
            timezone=settings.TIME_ZONE,
        )
        defaults = {
            "task": schedule.task,
            "crontab": crontab,
            "expire_seconds": schedule.expire_seconds,
            "description": schedule.description,
            "enabled": True,
        }
        if reset:
            PeriodicTask.objects.update_or_create(name=schedule.name, defaults=defaults)
            installed.append(schedule.name)
        else:
            _, created = PeriodicTask.objects.get_or_create(name=schedule.name, defaults=defaults)
            if created:
                installed.append(schedule.name)
    return installed
