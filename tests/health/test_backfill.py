"""Backfilling the score history: past dates scored with what was known then, once."""

import datetime as dt

from accounts.ingestion import ingest_events
from accounts.models import Account
from health.models import HealthScore
from health.scoring import backfill_history, recompute_health
from tests.factories import AccountFactory

NOW = dt.datetime(2026, 11, 23, 15, 30, tzinfo=dt.UTC)


def test_backfill_scores_past_midnights_once_with_what_was_known_then(db):
    account = AccountFactory(contract_start=dt.date(2026, 1, 1))
    recent = [
        {
            "account": account.external_id,
            "name": "login",
            "occurred_at": (NOW - dt.timedelta(days=d)).isoformat(),
        }
        for d in range(1, 5)
    ]
    ingest_events(raw_rows=recent, accounts=Account.objects.all(), now=NOW)

    dates = backfill_history(until=NOW, days=28, every_days=7)

    midnight = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
    assert dates == [midnight - dt.timedelta(days=d) for d in (28, 21, 14, 7)]
    history = {s.computed_at: s for s in HealthScore.objects.filter(account=account)}
    assert set(history) == set(dates)

    def raw(score, measure):
        return next(c["raw"] for c in score.full_components() if c["measure"] == measure)

    # The logins of the last four days were not known at any backfilled date; now they are.
    assert [raw(history[when], "login_days") for when in dates] == [0, 0, 0, 0]
    recompute_health(now=NOW)
    assert raw(HealthScore.objects.get(account=account, computed_at=NOW), "login_days") == 4
    assert backfill_history(until=NOW, days=28, every_days=7) == []
