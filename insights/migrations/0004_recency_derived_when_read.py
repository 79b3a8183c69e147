"""``AccountValue.recency_days`` is derived when read (a model property); the model drops the field.

The column stays in the database for this release: code of the release before, still running
between ``migrate`` and the restarts, writes it (docs/deploy.md, "Upgrades": expand, then
contract). It is nullable, so the new code's inserts leave it empty; a later release drops it.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("insights", "0003_defaults"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.RemoveField(model_name="accountvalue", name="recency_days")],
            database_operations=[],
        ),
    ]
