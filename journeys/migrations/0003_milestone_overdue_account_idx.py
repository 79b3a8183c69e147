from django.db import migrations, models


class Migration(migrations.Migration):
    """An index for the milestone_overdue trigger: an account's overdue milestones."""

    dependencies = [
        ("journeys", "0002_default_journeys"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="milestone",
            index=models.Index(
                condition=models.Q(("status", "overdue")),
                fields=["account"],
                name="milestone_overdue_account_idx",
            ),
        ),
    ]
