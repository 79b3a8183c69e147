from django.db import migrations, models


class Migration(migrations.Migration):
    """Journeys passes, so that an incremental pass reads what changed since the previous one."""

    dependencies = [
        ("journeys", "0003_milestone_overdue_account_idx"),
    ]

    operations = [
        migrations.CreateModel(
            name="JourneyPass",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("as_of", models.DateTimeField(unique=True)),
                ("full", models.BooleanField()),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "ordering": ["-as_of", "-id"],
            },
        ),
    ]
