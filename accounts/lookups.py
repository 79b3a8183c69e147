"""Long lists of values in a filter as one array parameter on PostgreSQL.

``pk__in=ids`` sends one parameter per value: at tens of thousands of ids (a day's alerts at 1M
accounts, an incremental run's scope) building, sending and parsing that list costs more than the
query. ``any_of("pk", ids)`` sends ``pk = ANY(%s::bigint[])`` with the list as one parameter on
PostgreSQL and is the usual ``IN`` elsewhere (SQLite, for ``make run``).
"""

from collections.abc import Iterable
from typing import Any

from django.db.models import F, Lookup
from django.db.models.lookups import In


class InArray(Lookup):
    """``column = ANY(%s::type[])`` (PostgreSQL); ``column IN (…)`` on other databases."""

    lookup_name = "in_array"
    prepare_rhs = False

    def as_sql(self, compiler, connection):  # type: ignore[override]
        return In(self.lhs, list(self.rhs)).as_sql(compiler, connection)

    def as_postgresql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        array_type = self.lhs.output_field.cast_db_type(connection)
        if array_type.startswith("varchar"):
            array_type = "text"  # a cast to varchar(n) would cut a longer value and match wrongly
        return f"{lhs} = ANY(%s::{array_type}[])", [*lhs_params, list(self.rhs)]


def any_of(field: str, values: Iterable[Any]) -> InArray:
    """A filter condition: ``field`` is one of ``values`` (a model field name, ``pk`` included)."""
    return InArray(F(field), list(values))
