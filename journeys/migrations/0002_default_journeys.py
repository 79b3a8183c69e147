"""The default journey (onboarding → adoption → renewal → churned) and a five-stage example.

The default journey fits the events the product sends (and the demo data): login,
report_viewed, export, invite_sent, integration_connected, order_placed. The second journey
(reach → acquisition → conversion → retention → loyalty, for the "self-serve" segment) shows
that a lifecycle is configuration, not code.
"""

from django.db import migrations

DEFAULT = {
    "key": "customer-lifecycle",
    "name": "Customer lifecycle",
    "description": "Onboarding (about 90 days) → adoption → renewal (120 days before the renewal date).",
    "segment": "",
    "is_default": True,
    "stages": [
        {
            "key": "onboarding",
            "name": "Onboarding",
            "entered_by": "first",
            "expected_days": 90,
            "max_days": 90,
            "milestones": [
                {"key": "kickoff-call", "name": "Kickoff call", "due_days": 7},
                {
                    "key": "first-login",
                    "name": "First login",
                    "due_days": 7,
                    "completion": "event_count",
                    "event": "login",
                    "threshold": 1,
                    "window_days": 7,
                },
                {
                    "key": "first-key-action",
                    "name": "First report viewed",
                    "due_days": 14,
                    "completion": "event_count",
                    "event": "report_viewed",
                    "threshold": 1,
                    "window_days": 14,
                },
                {
                    "key": "weekly-usage",
                    "name": "Weekly usage habit (3 of the first 4 weeks)",
                    "due_days": 28,
                    "completion": "active_weeks",
                    "event": "login",
                    "threshold": 3,
                    "window_days": 28,
                },
                {
                    "key": "team-invited",
                    "name": "Team active (3 people logged in)",
                    "due_days": 30,
                    "required": False,
                    "completion": "distinct_contacts",
                    "event": "login",
                    "threshold": 3,
                    "window_days": 30,
                },
                {
                    "key": "integration-done",
                    "name": "Integration connected",
                    "due_days": 45,
                    "completion": "event_count",
                    "event": "integration_connected",
                    "threshold": 1,
                    "window_days": 90,
                },
                {"key": "onboarding-review", "name": "Onboarding review", "due_days": 90},
            ],
        },
        {
            "key": "adoption",
            "name": "Adoption",
            "entered_by": "after_previous",
            "milestones": [
                {
                    "key": "first-business-review",
                    "name": "First business review",
                    "due_days": 120,
                    "required": False,
                },
            ],
        },
        {
            "key": "renewal",
            "name": "Renewal",
            "entered_by": "before_renewal",
            "days_before_renewal": 120,
            "expected_days": 120,
            "returns_to": "adoption",
            "milestones": [
                {"key": "open-tickets-reviewed", "name": "Open tickets reviewed", "due_days": 14},
                {"key": "renewal-review", "name": "Renewal review", "due_days": 30},
            ],
        },
        {"key": "churned", "name": "Churned", "entered_by": "on_churn", "milestones": []},
    ],
}

FIVE_STAGES = {
    "key": "five-stage-lifecycle",
    "name": "Five-stage lifecycle (example)",
    "description": "Reach → acquisition → conversion → retention → loyalty, for self-serve accounts.",
    "segment": "self-serve",
    "is_default": False,
    "stages": [
        {
            "key": "reach",
            "name": "Reach",
            "entered_by": "first",
            "max_days": 30,
            "milestones": [
                {
                    "key": "first-visit",
                    "name": "First login",
                    "due_days": 14,
                    "completion": "event_count",
                    "event": "login",
                    "threshold": 1,
                    "window_days": 30,
                },
            ],
        },
        {
            "key": "acquisition",
            "name": "Acquisition",
            "entered_by": "after_previous",
            "max_days": 30,
            "milestones": [
                {
                    "key": "team-invited",
                    "name": "Invited a colleague",
                    "due_days": 30,
                    "completion": "event_count",
                    "event": "invite_sent",
                    "threshold": 1,
                    "window_days": 30,
                },
            ],
        },
        {
            "key": "conversion",
            "name": "Conversion",
            "entered_by": "after_previous",
            "max_days": 60,
            "milestones": [
                {
                    "key": "first-order",
                    "name": "First order",
                    "due_days": 30,
                    "completion": "event_count",
                    "event": "order_placed",
                    "threshold": 1,
                    "window_days": 60,
                },
            ],
        },
        {
            "key": "retention",
            "name": "Retention",
            "entered_by": "after_previous",
            "max_days": 180,
            "milestones": [
                {
                    "key": "regular-use",
                    "name": "Active 6 of the first 8 weeks",
                    "due_days": 56,
                    "completion": "active_weeks",
                    "event": "",
                    "threshold": 6,
                    "window_days": 56,
                },
                {
                    "key": "repeat-orders",
                    "name": "Three people placed orders",
                    "due_days": 90,
                    "completion": "distinct_contacts",
                    "event": "order_placed",
                    "threshold": 3,
                    "window_days": 90,
                },
            ],
        },
        {"key": "loyalty", "name": "Loyalty", "entered_by": "after_previous", "milestones": []},
        {"key": "churned", "name": "Churned", "entered_by": "on_churn", "milestones": []},
    ],
}


def create_journeys(apps, schema_editor):
    Journey = apps.get_model("journeys", "Journey")
    Stage = apps.get_model("journeys", "Stage")
    MilestoneDefinition = apps.get_model("journeys", "MilestoneDefinition")
    for spec in (DEFAULT, FIVE_STAGES):
        if Journey.objects.filter(key=spec["key"]).exists():
            continue
        if spec["is_default"] and Journey.objects.filter(is_default=True).exists():
            continue
        journey = Journey.objects.create(
            key=spec["key"],
            name=spec["name"],
            description=spec["description"],
            segment=spec["segment"],
            is_default=spec["is_default"],
        )
        stages = {}
        for order, stage_spec in enumerate(spec["stages"], start=1):
            stage = Stage.objects.create(
                journey=journey,
                key=stage_spec["key"],
                name=stage_spec["name"],
                order=order,
                entered_by=stage_spec["entered_by"],
                days_before_renewal=stage_spec.get("days_before_renewal", 120),
                expected_days=stage_spec.get("expected_days"),
                max_days=stage_spec.get("max_days"),
            )
            stages[stage.key] = stage
            for index, milestone in enumerate(stage_spec["milestones"], start=1):
                MilestoneDefinition.objects.create(stage=stage, order=index, **milestone)
        for stage_spec in spec["stages"]:
            if "returns_to" in stage_spec:
                stage = stages[stage_spec["key"]]
                stage.renewed_returns_to = stages[stage_spec["returns_to"]]
                stage.save(update_fields=["renewed_returns_to"])


def remove_journeys(apps, schema_editor):
    apps.get_model("journeys", "Journey").objects.filter(key__in=[DEFAULT["key"], FIVE_STAGES["key"]]).delete()


class Migration(migrations.Migration):
    dependencies = [("journeys", "0001_initial")]

    operations = [migrations.RunPython(create_journeys, remove_journeys)]
