"""The RFM segment's plain index, without the pattern-ops (LIKE) twin ``db_index`` adds on
PostgreSQL, which nothing read: renamed and dropped in place (``accounts.migration_ops``)."""

from django.db import migrations, models

from accounts.migration_ops import combined, like_index, renamed_index

TABLE = "insights_accountvalue"
OLD = "insights_accountvalue_rfm_segment_384f3f12"


class Migration(migrations.Migration):
    dependencies = [
        ("insights", "0004_recency_derived_when_read"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="accountvalue",
                    name="rfm_segment",
                    field=models.CharField(
                        blank=True,
                        choices=[
                            ("champions", "Champions"),
                            ("loyal", "Loyal"),
                            ("potential_loyalists", "Potential loyalists"),
                            ("new", "New"),
                            ("at_risk", "At risk"),
                            ("cant_lose", "Can't lose them"),
                            ("hibernating", "Hibernating"),
                            ("lost", "Lost"),
                        ],
                        max_length=20,
                    ),
                ),
                migrations.AddIndex(
                    model_name="accountvalue",
                    index=models.Index(fields=["rfm_segment"], name="accountvalue_rfm_segment_idx"),
                ),
            ],
            database_operations=[
                combined(
                    like_index(TABLE, "rfm_segment", f"{OLD}_like"),
                    renamed_index(TABLE, "rfm_segment", OLD, "accountvalue_rfm_segment_idx"),
                )
            ],
        ),
    ]
