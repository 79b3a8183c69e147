"""An account's ``health_band_since`` is its entry into its band, as the score history gives it.

Over weeks of rescoring with logins that come and go, on PostgreSQL's one-statement path and on
the portable path (SQLite's, for ``make run``): after every run each account's
``health_band_since`` is the first score of its current run in its band, and ``band_entered``
with ``only_new`` gives exactly the entries not fired yet.
"""

import datetime as dt
import random

import pytest
from django.db import connection

from accounts.models import Account, Event
from health.models import HealthScore
from health.overrides import lift_overrides, set_override
from health.scoring import recompute_health
from playbooks.actions import fire_playbook
from playbooks.models import PlaybookRun
from playbooks.triggers import evaluate_trigger
from tests.factories import AccountFactory, PlaybookFactory, TaskStepFactory
from tests.health.conftest import T

DAY = dt.timedelta(days=1)


def entered_by_the_history(account_id: int, band: str | None, now: dt.datetime) -> dt.datetime | None:
    """The first score of the account's last run of scores in ``band`` (up to ``now``)."""
    rows = list(
        HealthScore.objects.filter(account_id=account_id, computed_at__lte=now)
        .order_by("computed_at")
        .values_list("computed_at", "band")
    )
    entered = None
    for computed_at, stored in rows:
        if (stored or None) != band:
            entered = None
        elif entered is None:
            entered = computed_at
    return entered


@pytest.fixture(params=["postgresql", "portable"])
def scoring_path(request, monkeypatch):
    if request.param == "portable":  # the streams and the ORM writer, as on SQLite
        monkeypatch.setattr(connection, "vendor", "sqlite")
    return request.param


def test_the_band_entry_follows_the_history_and_band_entered_fires_each_entry_once(
    linear_logins, scoring_path
):
    rng = random.Random(3)
    accounts = [AccountFactory() for _ in range(8)]
    red = PlaybookFactory(trigger="band_entered", trigger_params={"band": "red"}, active_since=T - DAY)
    green = PlaybookFactory(
        trigger="band_entered", trigger_params={"band": "green"}, active_since=T + 9 * DAY
    )
    for playbook in (red, green):
        TaskStepFactory(playbook=playbook)
    fired = {red.pk: 0, green.pk: 0}
    for day in range(0, 40, 2):
        now = T + day * DAY
        Event.objects.bulk_create(
            Event(account=account, name="login", occurred_at=now - dt.timedelta(hours=rng.randint(1, 40)))
            for account in accounts
            for _ in range(rng.choice([0, 0, 1, 4, 8, 12]))
        )
        recompute_health(now=now)
        if day == 10:
            recompute_health(now=now)  # a rerun at the same time keeps every entry

        for account_id, band, since in Account.objects.values_list("pk", "health_band", "health_band_since"):
            assert since == entered_by_the_history(account_id, band, now), (account_id, day)
        for playbook in (red, green):
            every = evaluate_trigger(playbook, now=now)
            recorded = set(
                PlaybookRun.objects.filter(playbook=playbook).values_list("account_id", "trigger_key")
            )
            only_new = evaluate_trigger(playbook, now=now, only_new=True)
            expected = sorted(
                (f.account_id, f.key, repr(f.context)) for f in every if (f.account_id, f.key) not in recorded
            )
            assert sorted((f.account_id, f.key, repr(f.context)) for f in only_new) == expected, day
            fired[playbook.pk] += len(only_new)
            fire_playbook(playbook=playbook, firings=every, now=now)
    # Accounts entered red and green more than once each over the weeks.
    assert fired[red.pk] > len(accounts) / 2 and fired[green.pk] > len(accounts) / 2, fired
    assert PlaybookRun.objects.count() == sum(fired.values())


def test_an_override_enters_its_band_when_set_and_leaves_it_when_lifted(linear_logins, world):
    account = AccountFactory()
    recompute_health(now=T)  # no logins: red
    account.refresh_from_db()
    assert (account.health_band, account.health_band_since) == ("red", T)

    set_override(
        actor=world.admin,
        account=account,
        band="green",
        reason="Signed",
        expires_at=T + 30 * DAY,
        now=T + DAY,
    )
    recompute_health(now=T + 2 * DAY)  # still green, by the override: the entry stays the override's
    account.refresh_from_db()
    assert (account.health_band, account.health_band_since) == ("green", T + DAY)
    set_override(
        actor=world.admin,
        account=account,
        band="green",
        reason="Again",
        expires_at=T + 30 * DAY,
        now=T + 3 * DAY,
    )
    account.refresh_from_db()
    assert account.health_band_since == T + DAY  # the same band: not a new entry

    lift_overrides(actor=world.admin, account=account, now=T + 4 * DAY)
    account.refresh_from_db()
    assert (account.health_band, account.health_band_since) == ("red", T + 4 * DAY)


def test_the_migration_takes_each_entry_from_the_history(linear_logins, scoring_path):
    from importlib import import_module

    from django.apps import apps

    backfill = import_module("accounts.migrations.0007_account_health_band_since").entered_from_history
    rng = random.Random(5)
    accounts = [AccountFactory() for _ in range(6)]
    unscored = AccountFactory(status="churned")
    for day in range(0, 20, 2):
        now = T + day * DAY
        Event.objects.bulk_create(
            Event(account=account, name="login", occurred_at=now - dt.timedelta(hours=rng.randint(1, 40)))
            for account in accounts
            for _ in range(rng.choice([0, 1, 8, 12]))
        )
        recompute_health(now=now)
    kept = dict(Account.objects.values_list("pk", "health_band_since"))
    Account.objects.update(health_band_since=None)

    with connection.schema_editor() as editor:
        backfill(apps, editor)

    assert dict(Account.objects.values_list("pk", "health_band_since")) == kept
    assert kept[unscored.pk] is None and len({kept[a.pk] for a in accounts}) > 1
