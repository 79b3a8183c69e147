"""The Celery app: configured from Django settings (CELERY_*), tasks found in every app."""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("lifeline")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
def _log_with_task_id(task_id=None, **kwargs) -> None:
    """A worker's log lines carry the task id as their request id (LOG_FORMAT=json)."""
    from config.logging import request_id

    request_id.set(task_id)


@task_postrun.connect
def _forget_task_id(**kwargs) -> None:
    from config.logging import request_id

    request_id.set(None)
