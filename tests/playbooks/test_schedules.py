"""The beat schedule installs once, names only real tasks, and keeps admin edits unless reset."""

from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from config.celery import app
from playbooks.schedules import SCHEDULES, install_schedules


def test_every_scheduled_task_exists():
    app.loader.import_default_modules()
    assert [s.task for s in SCHEDULES if s.task not in app.tasks] == []


def test_install_is_idempotent_and_keeps_admin_edits(db):
    assert len(install_schedules()) == len(SCHEDULES)
    assert install_schedules() == []
    pipeline = PeriodicTask.objects.get(name="Lifeline pipeline")
    assert pipeline.expire_seconds == 14 * 60
    pipeline.enabled = False
    pipeline.save(update_fields=["enabled"])

    call_command("setup_schedules", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert PeriodicTask.objects.get(name="Lifeline pipeline").enabled is False

    call_command("setup_schedules", "--reset", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert PeriodicTask.objects.get(name="Lifeline pipeline").enabled is True
    assert PeriodicTask.objects.filter(name__startswith="Lifeline").count() == len(SCHEDULES)
