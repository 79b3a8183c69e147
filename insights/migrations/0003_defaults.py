"""Default value settings, and the recurring NPS survey playbook."""

from decimal import Decimal

from django.db import migrations
from django.utils import timezone

NPS_PLAYBOOK = "NPS survey due"


def create_defaults(apps, schema_editor):
    ValueSettings = apps.get_model("insights", "ValueSettings")
    Playbook = apps.get_model("playbooks", "Playbook")
    Step = apps.get_model("playbooks", "Step")
    ValueSettings.objects.get_or_create(
        pk=1,
        defaults={
            "value_events": ["purchase", "order", "order_placed", "invoice"],
            "default_gross_margin": Decimal("0.700"),
            "segment_margins": {},
            "window_days": 365,
            "quiet_days": 90,
            "max_lifetime_years": Decimal("10.00"),
        },
    )
    playbook, created = Playbook.objects.get_or_create(
        name=NPS_PLAYBOOK,
        defaults={
            "description": "No NPS answer from the account in 90 days: send the survey (again).",
            "trigger": "no_survey_in",
            "trigger_params": {"days": 90},
            "active_since": timezone.now(),
        },
    )
    if created:
        Step.objects.create(
            playbook=playbook,
            order=0,
            kind="task",
            title_template="Send the NPS survey to {{ account.name }}",
            description_template="No NPS answer since {{ values.last_answer|default:'ever' }}.",
            due_in_days=7,
            priority="low",
        )


def remove_defaults(apps, schema_editor):
    apps.get_model("playbooks", "Playbook").objects.filter(name=NPS_PLAYBOOK).delete()


class Migration(migrations.Migration):
    dependencies = [("insights", "0002_playbook_triggers"), ("playbooks", "0002_default_playbooks")]

    operations = [migrations.RunPython(create_defaults, remove_defaults)]
