"""The default playbooks: welcome, stalled onboarding, at risk, sharp drop, renewal prep,
detractor follow-up, gone quiet, quarterly review, expansion signal."""

from django.db import migrations
from django.utils import timezone

TASK = "task"
ALERT = "alert"

PLAYBOOKS = [
    {
        "name": "Welcome and kickoff",
        "description": "A new account entered onboarding: welcome them and hold the kickoff call.",
        "trigger": "stage_entered",
        "trigger_params": {"stage": "onboarding"},
        "steps": [
            {"kind": TASK, "title_template": "Welcome {{ account.name }} and schedule the kickoff call",
             "description_template": "{{ account.name }} entered onboarding on {{ values.entered_at|slice:':10' }}.",
             "due_in_days": 3, "priority": "high"},
        ],
    },
    {
        "name": "Stalled onboarding",
        "description": "An onboarding milestone is overdue.",
        "trigger": "milestone_overdue",
        "trigger_params": {},
        "stages": ["onboarding"],
        "close_tasks_when_cleared": True,
        "steps": [
            {"kind": TASK, "title_template": "Unblock onboarding of {{ account.name }}: {{ values.milestone }} is overdue",
             "due_in_days": 2, "priority": "high"},
            {"kind": ALERT, "title_template": "Onboarding stalled at {{ account.name }} ({{ values.milestone }})",
             "severity": "warning", "recipient_rule": "team_manager"},
        ],
    },
    {
        "name": "At risk",
        "description": "The account's health entered the red band.",
        "trigger": "band_entered",
        "trigger_params": {"band": "red"},
        "cooldown_days": 14,
        "close_tasks_when_cleared": False,
        "steps": [
            {"kind": TASK, "title_template": "Build a save plan for {{ account.name }} (health {{ values.score }})",
             "due_in_days": 3, "priority": "urgent"},
            {"kind": ALERT, "title_template": "{{ account.name }} is at risk: health {{ values.score }}",
             "description_template": "ARR {{ account.currency }} {{ account.arr }}, renewal {{ account.renewal_date|default:'not set' }}.",
             "severity": "critical", "recipient_rule": "team"},
        ],
    },
    {
        "name": "Sharp drop",
        "description": "The health score fell by 15 points or more within 14 days.",
        "trigger": "score_dropped",
        "trigger_params": {"points": 15, "days": 14},
        "cooldown_days": 14,
        "steps": [
            {"kind": TASK, "title_template": "Find out why {{ account.name }} dropped {{ values.drop }} points",
             "due_in_days": 2, "priority": "high"},
            {"kind": ALERT, "title_template": "{{ account.name }}: health fell from {{ values.peak }} to {{ values.score }}",
             "severity": "warning", "recipient_rule": "owner"},
        ],
    },
    {
        "name": "Renewal prep (120 days)",
        "description": "Renewal within 120 days: prepare the renewal.",
        "trigger": "renewal_within",
        "trigger_params": {"days": 120},
        "steps": [
            {"kind": TASK, "title_template": "Prepare the renewal of {{ account.name }} (renews {{ values.renewal_date }})",
             "due_in_days": 14, "priority": "normal"},
        ],
    },
    {
        "name": "Renewal prep (60 days)",
        "description": "Renewal within 60 days: confirm terms and decision makers.",
        "trigger": "renewal_within",
        "trigger_params": {"days": 60},
        "steps": [
            {"kind": TASK, "title_template": "Confirm renewal terms with {{ account.name }} ({{ values.days_to_renewal }} days left)",
             "due_in_days": 7, "priority": "high"},
            {"kind": ALERT, "title_template": "{{ account.name }} renews in {{ values.days_to_renewal }} days",
             "severity": "info", "recipient_rule": "team_manager"},
        ],
    },
    {
        "name": "Detractor follow-up",
        "description": "An NPS answer of 6 or less.",
        "trigger": "nps_detractor",
        "trigger_params": {"max_score": 6},
        "steps": [
            {"kind": TASK, "title_template": "Follow up on an NPS {{ values.score }} from {{ account.name }}",
             "description_template": "{{ values.comment }}", "due_in_days": 2, "priority": "high"},
            {"kind": ALERT, "title_template": "Detractor at {{ account.name }}: NPS {{ values.score }}",
             "description_template": "{{ values.comment }}", "severity": "warning", "recipient_rule": "owner"},
        ],
    },
    {
        "name": "Gone quiet",
        "description": "Nobody logged in for 21 days.",
        "trigger": "inactivity",
        "trigger_params": {"days": 21, "event": "login"},
        "cooldown_days": 21,
        "close_tasks_when_cleared": True,
        "steps": [
            {"kind": TASK, "title_template": "{{ account.name }} has gone quiet: no login since {{ values.last_active|default:'ever' }}",
             "due_in_days": 3, "priority": "high"},
        ],
    },
    {
        "name": "Quarterly review",
        "description": "A business review every quarter from the contract start.",
        "trigger": "recurring_review",
        "trigger_params": {"days": 91},
        "steps": [
            {"kind": TASK, "title_template": "Quarterly business review with {{ account.name }}",
             "due_in_days": 14, "priority": "normal"},
        ],
    },
    {
        "name": "Expansion signal",
        "description": "Green and usage up 25% over 30 days: ready for an upsell conversation.",
        "trigger": "expansion_signal",
        "trigger_params": {"days": 30, "percent": 25},
        "cooldown_days": 60,
        "steps": [
            {"kind": TASK, "title_template": "Talk expansion with {{ account.name }}: usage up {{ values.growth_percent }}%",
             "due_in_days": 7, "priority": "normal"},
            {"kind": ALERT, "title_template": "Expansion signal at {{ account.name }}",
             "severity": "info", "recipient_rule": "team_manager"},
        ],
    },
]


def create_playbooks(apps, schema_editor):
    Playbook = apps.get_model("playbooks", "Playbook")
    Step = apps.get_model("playbooks", "Step")
    now = timezone.now()
    for spec in PLAYBOOKS:
        spec = {**spec}
        steps = spec.pop("steps")
        playbook, created = Playbook.objects.get_or_create(name=spec.pop("name"), defaults={**spec, "active_since": now})
        if created:
            for order, step in enumerate(steps):
                Step.objects.create(playbook=playbook, order=order, **step)


def remove_playbooks(apps, schema_editor):
    apps.get_model("playbooks", "Playbook").objects.filter(name__in=[p["name"] for p in PLAYBOOKS]).delete()


class Migration(migrations.Migration):
    dependencies = [("playbooks", "0001_initial")]

    operations = [migrations.RunPython(create_playbooks, remove_playbooks)]
