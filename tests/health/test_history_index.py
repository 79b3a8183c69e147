"""The score history's unique index holds score and band (migration health/0006), for index-only probes."""

from django.db import connection


def test_the_unique_run_constraint_covers_score_and_band(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'health_healthscore' AND indexname = %s",
            ["healthscore_unique_run"],
        )
        (definition,) = cursor.fetchone()
        cursor.execute("SELECT contype FROM pg_constraint WHERE conname = %s", ["healthscore_unique_run"])
        (kind,) = cursor.fetchone()

    assert definition.endswith("(account_id, computed_at) INCLUDE (score, band)"), definition
    assert definition.startswith("CREATE UNIQUE INDEX") and kind == "u"
