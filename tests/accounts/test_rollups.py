"""Rebuilding the daily rollup from raw events gives what ingestion kept."""

import datetime as dt

from django.core.management import call_command

from accounts.ingestion import ingest_events
from accounts.models import Account, Event, EventDaily


def snapshot():
    return sorted(EventDaily.objects.values_list("account_id", "name", "day", "count", "value_sum"))


def test_rebuild_matches_what_ingestion_kept_and_repairs_edits(account_a, account_b):
    rows = [
        {
            "account": ext,
            "name": name,
            "occurred_at": f"2026-11-{day:02d}T{hour:02d}:30:00+05:00",
            "value": "1.50",
        }
        for ext in ("acme", "globex")
        for name in ("login", "export")
        for day in (1, 2, 3)
        for hour in (2, 20)
    ]
    ingest_events(raw_rows=rows, accounts=Account.objects.all())
    kept = snapshot()

    call_command("rebuild_rollups")
    assert snapshot() == kept

    Event.objects.filter(account=account_a, name="export").delete()
    call_command("rebuild_rollups", "--since", "2026-11-02")
    after = snapshot()
    assert not any(r[0] == account_a.pk and r[1] == "export" and r[2] >= dt.date(2026, 11, 2) for r in after)
    # Days before --since are left as they were.
    assert [r for r in after if r[2] < dt.date(2026, 11, 2)] == [
        r for r in kept if r[2] < dt.date(2026, 11, 2)
    ]
