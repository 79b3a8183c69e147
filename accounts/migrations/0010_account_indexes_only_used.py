"""Only the account indexes something reads: the owner's is a prefix of (owner, name), and the
stage's pattern-ops (LIKE) twin on PostgreSQL served no query. Fewer indexes for every account
update. Done in place (``accounts.migration_ops``): the owner's foreign key is not re-validated
and the stage's index is renamed, not rebuilt."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from accounts.migration_ops import combined, dropped_index, like_index, renamed_index

TABLE = "accounts_account"

class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0009_account_renewal_index"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
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
            ],
            database_operations=[
                combined(
                    dropped_index(TABLE, "owner_id", "accounts_account_owner_id_7b1fcbd0"),
                    like_index(TABLE, "stage", "accounts_account_stage_4f34fdfd_like"),
                    renamed_index(TABLE, "stage", "accounts_account_stage_4f34fdfd", "account_stage_idx"),
                )
            ],
        ),
    ]
