"""Each account's entry into its current band, from the score history (``band_entered`` reads it).

The first score of the account's latest run of scores in its band, as ``band_entered`` found it
before. An account whose band no score has yet (an override set since the last recompute) entered
it now. Not atomic, in batches of accounts by id, each its own transaction: the accounts stay
readable and writable while it runs (at 1,000,000 accounts it rewrites every scored row).
"""

from django.db import migrations
from django.utils import timezone

BATCH = 20_000

BACKFILL_SQL = """
UPDATE accounts_account a SET health_band_since = COALESCE((
    SELECT MIN(h.computed_at) FROM health_healthscore h
     WHERE h.account_id = a.id AND h.band = a.health_band
       AND h.computed_at > COALESCE(
           (SELECT MAX(o.computed_at) FROM health_healthscore o
             WHERE o.account_id = a.id AND o.band <> a.health_band),
           '-infinity'::timestamptz)
), %s)
WHERE a.id >= %s AND a.id < %s AND a.health_band IS NOT NULL AND a.health_band_since IS NULL
"""


def entered_from_history(apps, schema_editor):
    Account = apps.get_model("accounts", "Account")
    HealthScore = apps.get_model("health", "HealthScore")
    connection = schema_editor.connection
    now = timezone.now()
    last = Account.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    for start in range(0, last + 1, BATCH):
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(BACKFILL_SQL, [now, start, start + BATCH])
            continue
        banded = Account.objects.filter(
            pk__gte=start, pk__lt=start + BATCH, health_band__isnull=False, health_band_since__isnull=True
        )
        for pk, band in banded.values_list("pk", "health_band"):
            entered = None
            for computed_at, stored in (
                HealthScore.objects.filter(account_id=pk).order_by("-computed_at").values_list("computed_at", "band")
            ):
                if stored != band:
                    break
                entered = computed_at
            Account.objects.filter(pk=pk).update(health_band_since=entered or now)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("accounts", "0007_account_health_band_since"),
        ("health", "0007_history_account_index_in_unique"),
    ]

    operations = [
        migrations.RunPython(entered_from_history, migrations.RunPython.noop, elidable=True),
    ]
