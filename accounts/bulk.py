"""Many rows written at once: PostgreSQL's COPY into a temporary table, then one INSERT … SELECT.

``bulk_create`` on PostgreSQL sends the rows as one array parameter per column, which psycopg
adapts in Python, value by value (with Django's per-value preparation before it): at tens of
thousands of rows that was most of the time of the journeys and playbooks steps. COPY sends the
plain values, and the INSERT … SELECT keeps what ``bulk_create`` gave, ``ON CONFLICT`` included,
so the unique constraints still make a rerun or a concurrent run a no-op. Other databases (SQLite
for ``make run``) keep ``bulk_create``.
"""

from collections.abc import Iterable, Sequence
from enum import Enum
from typing import Any

from django.db import connection, models, transaction
from psycopg.types.json import Jsonb

# Below this many rows the ORM's bulk_create is as fast and takes one statement, not five.
COPY_FROM_ROWS = 500


def _copy_value(field: models.Field, obj: models.Model) -> Any:
    """What COPY is given for ``field`` of ``obj``: its value (with defaults and auto times applied)."""
    value = field.pre_save(obj, add=True)
    if isinstance(field, models.JSONField) and value is not None:
        return Jsonb(value)
    if isinstance(value, Enum):  # a TextChoices member: its value, never its name
        return value.value
    return value


def copy_insert(
    model: type[models.Model],
    objs: Sequence[models.Model],
    *,
    fields: Sequence[str] | None = None,
    ignore_conflicts: bool = False,
    unique_fields: Sequence[str] = (),
    update_fields: Sequence[str] = (),
    with_ids: bool = False,
    copy_from: int | None = None,
) -> int:
    """Insert ``objs`` (unsaved) in one COPY and one INSERT … SELECT; return how many rows it wrote.

    ``fields``: the columns to write (default: every concrete field but an automatic primary key).
    ``ignore_conflicts``, or ``unique_fields`` with ``update_fields``: as for ``bulk_create``
    (``ON CONFLICT DO NOTHING`` / ``ON CONFLICT (…) DO UPDATE SET … = EXCLUDED.…``).
    ``with_ids``: allocate the primary keys first (from the table's sequence) and set them on
    ``objs``, for rows that others point to.
    ``copy_from``: fewer rows than this (default ``COPY_FROM_ROWS``) go through ``bulk_create``.
    """
    if not objs:
        return 0
    meta = model._meta
    chosen = (
        [meta.get_field(name) for name in fields]
        if fields
        else [f for f in meta.concrete_fields if not isinstance(f, models.AutoField)]
    )
    if connection.vendor != "postgresql" or len(objs) < (COPY_FROM_ROWS if copy_from is None else copy_from):
        model.objects.bulk_create(
            objs,
            batch_size=1000,
            ignore_conflicts=ignore_conflicts,
            update_conflicts=bool(update_fields),
            unique_fields=unique_fields or None,
            update_fields=update_fields or None,
        )
        return len(objs)
    for obj in objs:
        # As bulk_create does: a foreign key set to an object saved since takes its id now.
        obj._prepare_related_fields_for_save(operation_name="copy_insert")
    # No savepoint: a failure here fails the caller's transaction, as a failed INSERT would.
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        if with_ids:
            _allocate_ids(cursor, model, objs)
            chosen = [meta.pk, *(f for f in chosen if f is not meta.pk)]
        conflict = _conflict_clause(meta, ignore_conflicts, unique_fields, update_fields)
        values = ([_copy_value(f, obj) for f in chosen] for obj in objs)
        written, _ = _copy_then_insert(cursor, meta, chosen, values, conflict)
    return written


def _copy_then_insert(
    cursor,
    meta: Any,
    chosen: Sequence[models.Field],
    values: Iterable[Sequence[Any]],
    tail: str,
    *,
    returning: bool = False,
) -> tuple[int, list[tuple]]:
    """COPY ``values`` into a temporary table of the ``chosen`` columns, then one INSERT … SELECT
    into the model's table ending with ``tail`` (a conflict clause, a RETURNING).

    Gives the number of rows written and, with ``returning`` (``tail`` has a RETURNING), its rows.
    """
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in chosen)
    scratch = _copy_to_scratch(cursor, meta, chosen, values)
    cursor.execute(f"INSERT INTO {quote(meta.db_table)} ({columns}) SELECT {columns} FROM {scratch}{tail}")
    written = cursor.rowcount, (cursor.fetchall() if returning else [])
    cursor.execute(f"DROP TABLE {scratch}")  # the same table may be copied to again in this transaction
    return written


def _copy_to_scratch(
    cursor, meta: Any, chosen: Sequence[models.Field], values: Iterable[Sequence[Any]]
) -> str:
    """COPY ``values`` into a new temporary table of the ``chosen`` columns of the model's table; its name."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in chosen)
    scratch = quote(f"_copy_{meta.db_table}")
    cursor.execute(
        f"CREATE TEMPORARY TABLE {scratch} ON COMMIT DROP AS SELECT {columns} FROM {quote(meta.db_table)}"
        " WITH NO DATA"
    )
    with cursor.cursor.copy(f"COPY {scratch} ({columns}) FROM STDIN") as copy:
        for row in values:
            copy.write_row(row)
    return scratch


def copy_update(
    model: type[models.Model],
    objs: Sequence[models.Model],
    fields: Sequence[str],
    *,
    copy_from: int | None = None,
) -> int:
    """Save ``fields`` of saved ``objs`` in one COPY and one UPDATE … FROM; return how many rows it updated.

    ``bulk_update`` writes one ``CASE WHEN pk = … THEN …`` per row and field, which Django builds
    as expressions and PostgreSQL evaluates row by row: 818 tasks took ~1.7 s. Fewer rows than
    ``copy_from`` (default ``COPY_FROM_ROWS``), and other databases, keep ``bulk_update``.
    """
    if not objs:
        return 0
    if connection.vendor != "postgresql" or len(objs) < (COPY_FROM_ROWS if copy_from is None else copy_from):
        return model.objects.bulk_update(objs, fields, batch_size=1000)
    if any(obj.pk is None for obj in objs):
        raise ValueError("copy_update() objects must have a primary key set.")
    meta = model._meta
    chosen = [meta.pk, *(meta.get_field(name) for name in fields)]
    quote = connection.ops.quote_name
    values = ([_update_value(f, obj) for f in chosen] for obj in objs)
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        scratch = _copy_to_scratch(cursor, meta, chosen, values)
        assignments = ", ".join(f"{quote(f.column)} = s.{quote(f.column)}" for f in chosen[1:])
        pk = quote(meta.pk.column)
        cursor.execute(
            f"UPDATE {quote(meta.db_table)} AS t SET {assignments} FROM {scratch} AS s WHERE t.{pk} = s.{pk}"
        )
        updated = cursor.rowcount
        cursor.execute(f"DROP TABLE {scratch}")
    return updated


def _update_value(field: models.Field, obj: models.Model) -> Any:
    """What COPY is given for ``field`` of a saved ``obj``: its value as set (plain values, JSON, choices)."""
    value = getattr(obj, field.attname)
    if isinstance(field, models.JSONField) and value is not None:
        return Jsonb(value)
    if isinstance(value, Enum):
        return value.value
    return value


def _with_jsonb(rows: Iterable[Sequence[Any]], json_at: Sequence[int]) -> Iterable[Sequence[Any]]:
    """The rows with their JSON values (at ``json_at``) wrapped for COPY."""
    if not json_at:
        return rows
    return ([Jsonb(v) if i in json_at and v is not None else v for i, v in enumerate(row)] for row in rows)


def _conflict_clause(
    meta: Any, ignore_conflicts: bool, unique_fields: Sequence[str], update_fields: Sequence[str]
) -> str:
    quote = connection.ops.quote_name
    if update_fields:
        target = ", ".join(quote(meta.get_field(name).column) for name in unique_fields)
        columns = [quote(meta.get_field(name).column) for name in update_fields]
        return f" ON CONFLICT ({target}) DO UPDATE SET " + ", ".join(f"{c} = EXCLUDED.{c}" for c in columns)
    return " ON CONFLICT DO NOTHING" if ignore_conflicts else ""


def _allocate_ids(cursor, model: type[models.Model], objs: Sequence[models.Model]) -> None:
    """Take as many ids from the table's sequence as there are rows; give one to each row."""
    meta = model._meta
    cursor.execute(
        "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
        [meta.db_table, meta.pk.column, len(objs)],
    )
    for obj, (pk,) in zip(objs, cursor.fetchall(), strict=True):
        obj.pk = pk


def insert_rows(
    model: type[models.Model],
    fields: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    ignore_conflicts: bool = False,
    returning: Sequence[str] = (),
    copy_from: int | None = None,
) -> list[tuple]:
    """Insert plain rows (one value per name in ``fields``, in order) without building model objects.

    For the hot paths that write tens of thousands of rows whose values are already known: no
    ``Model()`` per row, no ``pre_save``, so every column the table needs must be in ``fields``
    (auto times included: pass the time). JSON values are given as Python objects.
    ``returning``: columns of the rows this call wrote (``RETURNING``; with ``ignore_conflicts``
    the rows that conflicted are not returned), converted as the ORM would; else ``[]``.
    PostgreSQL from ``copy_from`` rows (default ``COPY_FROM_ROWS``): COPY into a temporary table,
    then one INSERT … SELECT; fewer rows, or other databases: INSERT … VALUES in batches.
    """
    if not rows:
        return []
    meta = model._meta
    chosen = [meta.get_field(name) for name in fields]
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    columns = ", ".join(quote(f.column) for f in chosen)
    back = [meta.get_field(name) for name in returning]
    tail = _conflict_clause(meta, ignore_conflicts, (), ())
    if back:
        tail += " RETURNING " + ", ".join(quote(f.column) for f in back)
    written: list[tuple] = []
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        if connection.vendor == "postgresql" and len(rows) >= (
            COPY_FROM_ROWS if copy_from is None else copy_from
        ):
            json_at = [i for i, f in enumerate(chosen) if isinstance(f, models.JSONField)]
            _, written = _copy_then_insert(
                cursor, meta, chosen, _with_jsonb(rows, json_at), tail, returning=bool(back)
            )
        else:
            per_batch = max(1, min(1000, 900 // len(chosen)))  # SQLite: at most 999 parameters
            row_sql = "(" + ", ".join(["%s"] * len(chosen)) + ")"
            for start in range(0, len(rows), per_batch):
                batch = rows[start : start + per_batch]
                params = [
                    f.get_db_prep_save(v, connection)
                    for row in batch
                    for f, v in zip(chosen, row, strict=True)
                ]
                values = ", ".join([row_sql] * len(batch))
                cursor.execute(f"INSERT INTO {table} ({columns}) VALUES {values}{tail}", params)
                if back:
                    written.extend(cursor.fetchall())
    if not back:
        return []
    cols = [f.get_col(meta.db_table) for f in back]
    converters = [
        [*connection.ops.get_db_converters(col), *col.get_db_converters(connection)] for col in cols
    ]
    if not any(converters):
        return [tuple(row) for row in written]
    converted = []
    for row in written:
        values = list(row)
        for i, (col, funcs) in enumerate(zip(cols, converters, strict=True)):
            for func in funcs:
                values[i] = func(values[i], col, connection)
        converted.append(tuple(values))
    return converted
