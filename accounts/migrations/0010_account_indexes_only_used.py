"""Only the account indexes something reads: the owner's is a prefix of (owner, name), the stage's
LIKE (pattern-ops) index on PostgreSQL served no query. Fewer indexes for every account update."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0009_account_renewal_index"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name="account",
            name="owner",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="owned_accounts",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="account",
            name="stage",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AddIndex(
            model_name="account",
            index=models.Index(fields=["stage"], name="account_stage_idx"),
        ),
    ]
