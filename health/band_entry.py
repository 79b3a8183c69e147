"""When an account entered its band (``Account.health_band_since``), from the score history.

The recompute keeps ``health_band_since`` as it writes each run (the run's time when the band
changes, else unchanged), so the ``band_entered`` trigger reads one column. A rerun at the same
time needs the history itself: it replaces that run's rows, so the account's band before the run
is no longer the history's. The entry is the first score of the account's latest run of scores
in its band.
"""

from collections.abc import Collection

from django.db.models import Exists, OuterRef, Subquery

from accounts.lookups import any_of
from accounts.models import Account
from health.models import HealthScore


def set_entries_from_history(account_ids: Collection[int]) -> None:
    """These accounts' ``health_band_since`` from the history (in their current band), in one UPDATE.

    The entry is the account's earliest score in its band with no later score in another band.
    """
    if not account_ids:
        return
    left_after = HealthScore.objects.filter(
        account_id=OuterRef("account_id"), computed_at__gt=OuterRef("computed_at")
    ).exclude(band=OuterRef(OuterRef("health_band")))
    entered = (
        HealthScore.objects.filter(account_id=OuterRef("pk"), band=OuterRef("health_band"))
        .exclude(Exists(left_after))
        .order_by("computed_at")
        .values("computed_at")[:1]
    )
    Account.objects.filter(any_of("pk", account_ids), health_band__isnull=False).update(
        health_band_since=Subquery(entered)
    )
