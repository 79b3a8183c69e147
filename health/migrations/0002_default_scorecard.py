"""The default scorecard: usage breadth and depth, trend, support load, NPS, onboarding, CSM engagement."""

from decimal import Decimal

from django.db import migrations
from django.utils import timezone

MEASURES = [
    # key, label, group, metric, params, weight, mapping
    ("login_days", "Days with a login (30 days)", "usage", "active_days", {"event": "login", "days": 30}, "2",
     {"type": "thresholds", "points": [[0, 0], [3, 30], [8, 60], [12, 85], [16, 100]]}),
    ("active_users", "Active contacts (30 days)", "usage", "active_contacts", {"days": 30}, "1",
     {"type": "linear", "zero_at": 0, "full_at": 3}),
    ("reports_viewed", "Reports viewed (30 days)", "usage", "event_count", {"event": "report_viewed", "days": 30}, "1",
     {"type": "linear", "zero_at": 0, "full_at": 8}),
    ("last_login", "Days since the last login", "usage", "days_since_last_event", {"event": "login"}, "1",
     {"type": "thresholds", "points": [[0, 100], [4, 80], [8, 50], [15, 20], [30, 0]]}),
    ("login_trend", "Logins vs the previous 30 days", "usage", "usage_trend", {"event": "login", "days": 30}, "1.5",
     {"type": "thresholds", "points": [[0, 0], [0.5, 25], [0.75, 60], [0.9, 85], [1.0, 100]]}),
    ("high_priority_tickets", "Open high-priority tickets", "support", "urgent_open_tickets", {}, "1.5",
     {"type": "thresholds", "points": [[0, 100], [1, 30], [2, 0]]}),
    ("open_tickets", "Open tickets", "support", "open_tickets", {}, "0.5",
     {"type": "thresholds", "points": [[0, 100], [2, 60], [4, 20], [6, 0]]}),
    ("nps", "Latest NPS answer", "sentiment", "nps_latest", {}, "1.5",
     {"type": "thresholds", "points": [[0, 0], [5, 25], [7, 65], [9, 100]]}),
    ("csat", "Average CSAT (90 days)", "sentiment", "csat_average", {"days": 90}, "0.5",
     {"type": "linear", "zero_at": 1, "full_at": 5}),
    ("milestones_done", "Milestones of the current stage done", "adoption", "milestone_completion", {}, "1",
     {"type": "linear", "zero_at": 0, "full_at": 100}),
    ("milestones_overdue", "Overdue milestones", "adoption", "overdue_milestones", {}, "1",
     {"type": "thresholds", "points": [[0, 100], [1, 50], [2, 20], [3, 0]]}),
    ("last_touchpoint", "Days since the last CSM touchpoint", "relationship", "days_since_touchpoint", {}, "1",
     {"type": "thresholds", "points": [[0, 100], [30, 80], [45, 50], [60, 20], [90, 0]]}),
]


def create_default(apps, schema_editor):
    Scorecard = apps.get_model("health", "Scorecard")
    Measure = apps.get_model("health", "Measure")
    if Scorecard.objects.filter(segment="").exists():
        return
    scorecard = Scorecard.objects.create(
        name="Default health",
        segment="",
        version=1,
        status="active",
        red_below=Decimal("45"),
        green_from=Decimal("75"),
        stale_after_days=14,
        published_at=timezone.now(),
    )
    Measure.objects.bulk_create(
        Measure(
            scorecard=scorecard,
            key=key,
            label=label,
            group=group,
            metric=metric,
            params=params,
            weight=Decimal(weight),
            mapping=mapping,
            position=position,
        )
        for position, (key, label, group, metric, params, weight, mapping) in enumerate(MEASURES)
    )


def remove_default(apps, schema_editor):
    apps.get_model("health", "Scorecard").objects.filter(segment="", version=1).delete()


class Migration(migrations.Migration):
    dependencies = [("health", "0001_initial")]

    operations = [migrations.RunPython(create_default, remove_default)]
