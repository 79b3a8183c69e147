"""The outbox key unique by a named constraint: PostgreSQL's unique constraint is renamed and its
pattern-ops (LIKE) twin, which nothing read, dropped, in place: no rebuild holding the outbox
while the delivery worker waits (``accounts.migration_ops``). SQLite (a demo) gets the named
unique index beside the column's own."""

from django.db import migrations, models

TABLE = "playbooks_emaildelivery"
LIKE = "playbooks_emaildelivery_key_5c68f5f7_like"  # Django's name, from the table and column
NEW = "emaildelivery_key_unique"


def _unique_on_key(schema_editor) -> str:
    """The name of the key's unique constraint: ``…_key_key`` when created with the table."""
    with schema_editor.connection.cursor() as cursor:
        constraints = schema_editor.connection.introspection.get_constraints(cursor, TABLE)
    (name,) = (
        name
        for name, found in constraints.items()
        if found["columns"] == ["key"] and found["unique"] and not found["primary_key"]
    )
    return name


def forwards(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        schema_editor.execute(f'CREATE UNIQUE INDEX "{NEW}" ON "{TABLE}" ("key")')
        return
    schema_editor.execute(f'DROP INDEX "{LIKE}"')
    schema_editor.execute(
        f'ALTER TABLE "{TABLE}" RENAME CONSTRAINT "{_unique_on_key(schema_editor)}" TO "{NEW}"'
    )


def backwards(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        schema_editor.execute(f'DROP INDEX "{NEW}"')
        return
    schema_editor.execute(f'ALTER TABLE "{TABLE}" RENAME CONSTRAINT "{NEW}" TO "{TABLE}_key_key"')
    schema_editor.execute(f'CREATE INDEX "{LIKE}" ON "{TABLE}" ("key" varchar_pattern_ops)')


class Migration(migrations.Migration):
    dependencies = [
        ("playbooks", "0004_email_due_index_with_id"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="emaildelivery",
                    name="key",
                    field=models.CharField(help_text="What this email is; never twice.", max_length=200),
                ),
                migrations.AddConstraint(
                    model_name="emaildelivery",
                    constraint=models.UniqueConstraint(fields=("key",), name=NEW),
                ),
            ],
            database_operations=[migrations.RunPython(forwards, backwards)],
        ),
    ]
