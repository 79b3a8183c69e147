"""Index changes done in place: the indexes a table has are renamed or dropped, never rebuilt.

Django changes a field's ``db_index`` or ``unique`` by dropping its indexes and building new ones
while the table is locked, and for a foreign key also drops its constraint and adds it back,
checked over every row. On a table of a million accounts, or a busy outbox, that stalls the
workers for the length of a ``migrate``. The migrations that only drop an index nothing reads
(a pattern-ops ``_like`` twin, an owner index that ``(owner, name)`` already serves) state the
model change with ``SeparateDatabaseAndState`` and run these statements instead. The indexes they
name are those Django created by ``CREATE INDEX``, named by a hash of the table and column names,
the same on every database; a unique constraint created with its table is named by PostgreSQL
instead, so ``playbooks.0005`` finds the outbox key's by introspection.
"""

from collections.abc import Sequence

from django.db import migrations

POSTGRESQL = "postgresql"


def vendor_sql(
    forwards: dict[str, Sequence[str]], backwards: dict[str, Sequence[str]]
) -> migrations.RunPython:
    """Like ``RunSQL``, with statements per database: ``"postgresql"`` or ``"other"``."""

    def run(statements: dict[str, Sequence[str]]):
        def apply(apps, schema_editor) -> None:
            vendor = POSTGRESQL if schema_editor.connection.vendor == POSTGRESQL else "other"
            for statement in statements[vendor]:
                schema_editor.execute(statement)

        return apply

    return migrations.RunPython(run(forwards), run(backwards))


def renamed_index(table: str, column: str, old: str, new: str) -> tuple[dict, dict]:
    """``(forwards, backwards)`` statements renaming ``old`` to ``new`` (a plain index on ``column``).

    SQLite cannot rename an index: it is dropped and created again (a demo's small table).
    """

    def rename(source: str, target: str) -> dict[str, list[str]]:
        return {
            POSTGRESQL: [f'ALTER INDEX "{source}" RENAME TO "{target}"'],
            "other": [f'DROP INDEX "{source}"', f'CREATE INDEX "{target}" ON "{table}" ("{column}")'],
        }

    return rename(old, new), rename(new, old)


def dropped_index(table: str, column: str, name: str) -> tuple[dict, dict]:
    """``(forwards, backwards)`` statements dropping ``name``, a plain index on ``column``."""
    return (
        {vendor: [f'DROP INDEX "{name}"'] for vendor in (POSTGRESQL, "other")},
        {vendor: [f'CREATE INDEX "{name}" ON "{table}" ("{column}")'] for vendor in (POSTGRESQL, "other")},
    )


def like_index(table: str, column: str, name: str) -> tuple[dict, dict]:
    """``(forwards, backwards)`` statements dropping ``name``, PostgreSQL's pattern-ops twin."""
    return (
        {POSTGRESQL: [f'DROP INDEX "{name}"'], "other": []},
        {POSTGRESQL: [f'CREATE INDEX "{name}" ON "{table}" ("{column}" varchar_pattern_ops)'], "other": []},
    )


def combined(*parts: tuple[dict, dict]) -> migrations.RunPython:
    """One ``vendor_sql`` of several ``(forwards, backwards)`` parts, undone in reverse order."""
    vendors = (POSTGRESQL, "other")
    forwards = {vendor: [s for f, _ in parts for s in f[vendor]] for vendor in vendors}
    backwards = {vendor: [s for _, b in reversed(parts) for s in b[vendor]] for vendor in vendors}
    return vendor_sql(forwards, backwards)
