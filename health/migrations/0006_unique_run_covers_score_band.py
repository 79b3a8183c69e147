"""The unique (account, computed_at) index of the score history also holds score and band (PostgreSQL).

``band_entered`` and ``score_dropped`` read each account's recent history for these two columns
only. A history row is ~1 KB (its components), so each probe read a heap page per row (14 s for
``band_entered`` at 1M accounts); with the columns in the index the probes are index-only scans.
The constraint keeps its name and its key, so Django's state is unchanged and ``ON CONFLICT
(account_id, computed_at)`` still infers it; a second index would cost every history insert.
The new index is built concurrently (no write lock on a large history), then takes over the
constraint. SQLite (``make run``) has no INCLUDE and keeps the plain constraint.
"""

from django.db import migrations

TABLE = "health_healthscore"
CONSTRAINT = "healthscore_unique_run"
BUILDING = "healthscore_unique_run_covering"


def cover(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {BUILDING}")  # a build interrupted earlier
    schema_editor.execute(
        f"CREATE UNIQUE INDEX CONCURRENTLY {BUILDING} ON {TABLE} (account_id, computed_at) INCLUDE (score, band)"
    )
    schema_editor.execute(
        f"ALTER TABLE {TABLE} DROP CONSTRAINT {CONSTRAINT}, ADD CONSTRAINT {CONSTRAINT} UNIQUE USING INDEX {BUILDING}"
    )


def uncover(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"ALTER TABLE {TABLE} DROP CONSTRAINT {CONSTRAINT}, ADD CONSTRAINT {CONSTRAINT} UNIQUE (account_id, computed_at)"
    )


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("health", "0005_scorecard_rules"),
    ]

    operations = [migrations.RunPython(cover, uncover)]
