"""When each account entered its current band, kept on the account (``band_entered`` reads it).

The backfill takes it from the score history as ``band_entered`` did: the first score of the
account's current run in its band. One UPDATE on PostgreSQL; account by account elsewhere (SQLite
holds the demo data only).
"""

from django.db import migrations, models
from django.db.models import Subquery

BACKFILL_SQL = """
UPDATE accounts_account a SET health_band_since = (
    SELECT MIN(h.computed_at) FROM health_healthscore h
     WHERE h.account_id = a.id AND h.band = a.health_band
       AND h.computed_at > COALESCE(
           (SELECT MAX(o.computed_at) FROM health_healthscore o
             WHERE o.account_id = a.id AND o.band <> a.health_band),
           '-infinity'::timestamptz)
)
WHERE a.health_band IS NOT NULL
"""


def entered_from_history(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKFILL_SQL)
        return
    Account = apps.get_model("accounts", "Account")
    HealthScore = apps.get_model("health", "HealthScore")
    for account in Account.objects.filter(health_band__isnull=False).only("pk", "health_band"):
        history = HealthScore.objects.filter(account_id=account.pk)
        left = history.exclude(band=account.health_band).order_by("-computed_at").values("computed_at")[:1]
        run = history.filter(band=account.health_band)
        left_at = left.first()
        if left_at is not None:
            run = run.filter(computed_at__gt=left_at["computed_at"])
        entered = run.order_by("computed_at").values("computed_at")[:1]
        Account.objects.filter(pk=account.pk).update(health_band_since=Subquery(entered))


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_eventdaily_fillfactor"),
        ("health", "0007_history_account_index_in_unique"),
    ]

    operations = [
        migrations.AddField(
            model_name="account",
            name="health_band_since",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(entered_from_history, migrations.RunPython.noop, elidable=True),
    ]
