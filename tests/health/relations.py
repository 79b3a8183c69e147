"""Run a metric's SQL form (``metrics.relations``) on its own, to compare it with its stream."""

import datetime as dt

from django.db import connection
from django.db.models import QuerySet

from health.metrics import Reading, relations


def relation_readings(
    metric: str, params: dict, *, as_of: dt.datetime, accounts: QuerySet | None = None
) -> dict[int, Reading]:
    """The readings the recompute's statement would join for ``metric`` (what ``compute`` returns)."""
    (relation,) = relations([(metric, params)], as_of=as_of, accounts=accounts)
    expressions = [text.format(s="s") for text in (relation.value, relation.data_at, relation.where)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT s.account_id, {expressions[0]}, {expressions[1]} FROM ({relation.source}) s"
            f" WHERE {expressions[2]}",
            relation.params,
        )
        return {account_id: Reading(value, data_at) for account_id, value, data_at in cursor.fetchall()}
