"""The daily event rollup, rebuilt from raw events when it must be repaired.

Ingestion keeps the rollup right as events arrive; this rebuild is for repairs (events removed
or corrected by hand). It is one DELETE and one INSERT … SELECT … GROUP BY: safe to run twice.
"""

import datetime as dt

from django.db import connection, transaction
from django.db.models import Count, Min, Sum
from django.db.models.functions import Coalesce, TruncDate

from accounts.models import Event, EventDaily


@transaction.atomic
def rebuild_daily_rollups(*, since: dt.date | None = None) -> int:
    """Recompute EventDaily for every UTC day from ``since`` (default: the oldest event's day).

    Days before the oldest stored event are left alone, so rollups outlive the raw events a
    retention policy removes. Returns the number of rollup rows written.
    """
    oldest = Event.objects.aggregate(first=Min("occurred_at"))["first"]
    if oldest is None:
        return 0
    first_day = max(since, oldest.astimezone(dt.UTC).date()) if since else oldest.astimezone(dt.UTC).date()
    start = dt.datetime.combine(first_day, dt.time.min, tzinfo=dt.UTC)
    EventDaily.objects.filter(day__gte=first_day).delete()
    totals = (
        Event.objects.filter(occurred_at__gte=start)
        .annotate(day=TruncDate("occurred_at", tzinfo=dt.UTC))
        .values("account_id", "name", "day")
        .annotate(
            count=Count("id"), value_sum=Coalesce(Sum("value"), 0, output_field=EventDaily.value_sum.field)
        )
        .values_list("account_id", "name", "day", "count", "value_sum")
        .order_by()
    )
    select_sql, params = totals.query.sql_with_params()
    quote = connection.ops.quote_name
    columns = ", ".join(quote(c) for c in ("account_id", "name", "day", "count", "value_sum"))
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {quote(EventDaily._meta.db_table)} ({columns}) {select_sql}", params)
        return cursor.rowcount
