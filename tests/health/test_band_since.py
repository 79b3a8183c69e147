"""An account's ``health_band_since`` is its entry into its band, as the score history gives it.

Over weeks of rescoring with logins that come and go, on PostgreSQL, through both of the
recompute's code paths (its one statement, and the portable path that other databases take,
chosen by the vendor check): after every run each account's
``health_band_since`` is the first score of its current run in its band, and ``band_entered``
with ``only_new`` gives exactly the entries not fired yet.
"""

import datetime as dt
import random

import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import Account, Event
from health.models import HealthScore
from health.overrides import lift_overrides, set_override
from health.scoring import recompute_health
from playbooks.actions import fire_playbook
from playbooks.models import PlaybookRun
from playbooks.triggers import evaluate_trigger
from tests.factories import AccountFactory, PlaybookFactory, TaskStepFactory
from tests.health.conftest import T, events

DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)


def entered_by_the_history(account_id: int, band: str | None, now: dt.datetime) -> dt.datetime | None:
    """The first score of the account's last run of scores in ``band`` (up to ``now``); None unscored."""
    if band is None:
        return None
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
    if request.param == "portable":  # the streams and the ORM writer, still on PostgreSQL
        monkeypatch.setattr(connection, "vendor", "portable")
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
        if day in (16, 24):  # late data, then a rerun at the same time: some bands change back
            Event.objects.bulk_create(
                Event(account=account, name="login", occurred_at=now - dt.timedelta(hours=2))
                for account in rng.sample(accounts, 4)
                for _ in range(10)
            )
            Event.objects.filter(account__in=rng.sample(accounts, 3), occurred_at__gt=now - 7 * DAY).delete()
            recompute_health(now=now)

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


def override(account: Account, band: str, *, at: dt.datetime, by, reason: str) -> None:
    """A band set by hand at ``at``, for a month."""
    set_override(actor=by, account=account, band=band, reason=reason, expires_at=at + 30 * DAY, now=at)


def test_an_override_enters_its_band_when_set_and_a_lift_before_any_recompute_puts_the_entry_back(
    linear_logins, world
):
    account = AccountFactory()
    recompute_health(now=T)  # no logins: red
    account.refresh_from_db()
    assert (account.health_band, account.health_band_since) == ("red", T)

    override(account, "green", at=T + DAY, by=world.admin, reason="Signed")
    recompute_health(now=T + 2 * DAY)  # still green, by the override: the entry stays the override's
    account.refresh_from_db()
    assert (account.health_band, account.health_band_since) == ("green", T + DAY)
    override(account, "green", at=T + 3 * DAY, by=world.admin, reason="Again")
    account.refresh_from_db()
    assert account.health_band_since == T + DAY  # the same band: not a new entry

    lift_overrides(actor=world.admin, account=account, now=T + 4 * DAY)
    account.refresh_from_db()
    # The recompute at T + 2 recorded green: the stay in red was interrupted, red is entered anew
    # (as when an override expires and the next recompute finds red again).
    assert (account.health_band, account.health_band_since) == ("red", T + 4 * DAY)

    recompute_health(now=T + 5 * DAY)
    override(account, "yellow", at=T + 6 * DAY, by=world.admin, reason="Talks")
    account.refresh_from_db()
    assert (account.health_band, account.health_band_since) == ("yellow", T + 6 * DAY)
    lift_overrides(actor=world.admin, account=account, now=T + 6 * DAY + HOUR)
    account.refresh_from_db()
    # Lifted before any recompute recorded it: back in red with the entry it had, so no second
    # "entered red" for the same stay.
    assert (account.health_band, account.health_band_since) == ("red", T + 4 * DAY)

    # An override whose band the scores reach anyway: lifted, the account is in a new band now.
    override(account, "green", at=T + 7 * DAY, by=world.admin, reason="Deal")
    events(account, *[("login", f"2026-03-17 {13 + i}:00", None, None) for i in range(10)])  # T + 7 days
    recompute_health(now=T + 8 * DAY)
    lift_overrides(actor=world.admin, account=account, now=T + 9 * DAY)
    account.refresh_from_db()
    assert (account.health_band, account.health_band_since) == ("green", T + 7 * DAY)


def test_the_migration_takes_each_entry_from_the_history(linear_logins, scoring_path):
    from importlib import import_module

    from django.apps import apps

    backfill = import_module("accounts.migrations.0008_backfill_health_band_since").entered_from_history
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
    overridden = AccountFactory(health_band="green")  # by hand, before any score: entered "now"
    Account.objects.update(health_band_since=None)

    before = timezone.now()
    with connection.schema_editor() as editor:
        backfill(apps, editor)

    backfilled = dict(Account.objects.values_list("pk", "health_band_since"))
    assert before <= backfilled.pop(overridden.pk) <= timezone.now()
    assert backfilled == kept
    assert kept[unscored.pk] is None and len({kept[a.pk] for a in accounts}) > 1


def test_a_rerun_that_undoes_a_band_change_gives_the_entry_back(linear_logins, scoring_path):
    account = AccountFactory()
    events(account, *[("login", f"2026-03-09 {8 + i:02d}:00", None, None) for i in range(8)])  # T - 1 day
    recompute_health(now=T)
    assert Account.objects.get(pk=account.pk).health_band == "green"
    later = T + 10 * DAY  # the logins left the 7-day window: red
    recompute_health(now=later)
    assert Account.objects.values_list("health_band", "health_band_since").get(pk=account.pk) == (
        "red",
        later,
    )

    events(account, *[("login", f"2026-03-19 {8 + i:02d}:00", None, None) for i in range(8)])  # late data
    recompute_health(now=later)  # the same time again: green all along

    assert Account.objects.values_list("health_band", "health_band_since").get(pk=account.pk) == ("green", T)
