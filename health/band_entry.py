"""When an account entered its band (``Account.health_band_since``), from the score history.

The recompute keeps ``health_band_since`` as it writes each run (the run's time when the band
changes, else unchanged), so the ``band_entered`` trigger reads one column. Two cases need the
history itself: a rerun at the same time (it replaces that run's rows, so the account's band
before the run is no longer the history's), and an override lifted before any score recorded
it (the band goes back to one the history already holds). The entry is the first score of the
account's latest run of scores in its band.
"""

import datetime as dt
from collections.abc import Collection

from django.db import connection

from accounts.lookups import any_of
from accounts.models import Account
from health.models import HealthScore

# The first score of each account's latest run in its band: after the last score in another band.
_ENTRIES_SQL = """
UPDATE {accounts} a SET health_band_since = (
    SELECT MIN(h.computed_at) FROM {history} h
     WHERE h.account_id = a.id AND h.band = a.health_band
       AND h.computed_at > COALESCE(
           (SELECT MAX(o.computed_at) FROM {history} o
             WHERE o.account_id = a.id AND o.band <> a.health_band),
           '-infinity'::timestamptz)
)
WHERE a.id = ANY(%s) AND a.health_band IS NOT NULL
"""


def entered_from_history(account_id: int, band: str) -> dt.datetime | None:
    """The first score of the account's latest run in ``band``; None if its latest score is in another."""
    entered = None
    history = HealthScore.objects.filter(account_id=account_id).order_by("-computed_at")
    for computed_at, stored in history.values_list("computed_at", "band").iterator(chunk_size=500):
        if stored != band:
            break
        entered = computed_at
    return entered


def set_entries_from_history(account_ids: Collection[int]) -> None:
    """These accounts' ``health_band_since`` from the history (in their current band)."""
    if not account_ids:
        return
    if connection.vendor == "postgresql":
        sql = _ENTRIES_SQL.format(accounts=Account._meta.db_table, history=HealthScore._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(sql, [list(account_ids)])
        return
    for account_id, band in Account.objects.filter(any_of("pk", account_ids)).values_list(
        "pk", "health_band"
    ):
        since = entered_from_history(account_id, band) if band else None
        Account.objects.filter(pk=account_id).update(health_band_since=since)
