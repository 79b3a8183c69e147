"""Triggers that leave out, in SQL, the occurrences already fired give exactly the new firings.

Over a year of daily runs, for each such trigger: ``evaluate_trigger(only_new=True)`` equals the
full set of firings minus the (account, key) pairs already recorded, while the accounts, their
renewals, answers and logins change underneath.
"""

import datetime as dt
import random

import pytest
from django.db.models import Value

from accounts.ingestion import ingest_events
from accounts.models import Account, SurveyResponse
from playbooks.actions import fire_playbook
from playbooks.models import PlaybookRun
from playbooks.triggers import EXCLUDE_FIRED_IN_SQL, DaysBetween, evaluate_trigger
from tests.factories import AccountFactory, PlaybookFactory, TaskStepFactory

START = dt.datetime(2025, 12, 20, 23, 30, tzinfo=dt.UTC)  # late in the UTC day, across a new year

PLAYBOOKS = [
    ("renewal_within", {"days": 60}),
    ("inactivity", {"days": 21, "event": "login"}),
    ("inactivity", {"days": 14}),
    ("recurring_review", {"days": 30}),
    ("expansion_signal", {"days": 14, "percent": 25, "event": "login"}),
    ("no_survey_in", {"days": 45}),
]


def test_every_trigger_that_can_is_covered():
    # band_entered's entries come from the recompute: tests/health/test_band_since.py covers it.
    assert {trigger for trigger, _ in PLAYBOOKS} | {"band_entered"} == set(EXCLUDE_FIRED_IN_SQL)


@pytest.fixture
def changing_accounts(world):
    rng = random.Random(7)
    accounts = []
    for n in range(12):
        account = AccountFactory(
            contract_start=None if n % 4 == 0 else START.date() - dt.timedelta(days=rng.randint(-40, 400)),
            renewal_date=START.date() + dt.timedelta(days=rng.randint(-10, 200)),
            health_band="green" if n % 3 else "yellow",
        )
        Account.objects.filter(pk=account.pk).update(
            created_at=START - dt.timedelta(days=rng.randint(0, 300))
        )
        accounts.append(account)
    return rng, accounts


def _change_the_world(rng, accounts, now):
    """A day of changes: logins (some in bursts), NPS answers (some backdated), renewals moved."""
    rows = []
    for account in rng.sample(accounts, 4):
        for _ in range(rng.choice([1, 1, 5, 20])):
            rows.append(
                {
                    "account": account.external_id,
                    "name": rng.choice(["login", "login", "report"]),
                    "occurred_at": (now - dt.timedelta(hours=rng.randint(1, 30))).isoformat(),
                }
            )
    ingest_events(raw_rows=rows, accounts=Account.objects.all(), now=now)
    if rng.random() < 0.3:
        SurveyResponse.objects.create(
            account=rng.choice(accounts),
            kind="nps",
            score=rng.randint(0, 10),
            responded_at=now - dt.timedelta(days=rng.choice([0, 1, 20, 60])),
        )
    if rng.random() < 0.2:
        renewed = rng.choice(accounts)
        Account.objects.filter(pk=renewed.pk).update(
            renewal_date=now.date() + dt.timedelta(days=rng.randint(-5, 120))
        )


def test_only_new_is_every_firing_not_recorded_yet_over_a_year(changing_accounts):
    rng, accounts = changing_accounts
    playbooks = [
        PlaybookFactory(trigger=trigger, trigger_params=params, active_since=START - dt.timedelta(days=30))
        for trigger, params in PLAYBOOKS
    ]
    for playbook in playbooks:
        TaskStepFactory(playbook=playbook)
    fired_new = dict.fromkeys(range(len(playbooks)), 0)
    for day in range(0, 365, 3):
        now = START + dt.timedelta(days=day)
        _change_the_world(rng, accounts, now)
        for index, playbook in enumerate(playbooks):
            every = evaluate_trigger(playbook, now=now)
            recorded = set(
                PlaybookRun.objects.filter(playbook=playbook).values_list("account_id", "trigger_key")
            )
            only_new = evaluate_trigger(playbook, now=now, only_new=True)

            expected = sorted(
                (f.account_id, f.key, repr(f.context)) for f in every if (f.account_id, f.key) not in recorded
            )
            assert sorted((f.account_id, f.key, repr(f.context)) for f in only_new) == expected, (
                playbook.trigger,
                now,
            )
            fired_new[index] += len(only_new)
            fire_playbook(playbook=playbook, firings=every, now=now)
    # Every playbook had new occurrences to find, and repeats to leave out, during the year.
    assert all(fired_new.values()), fired_new
    assert all(
        PlaybookRun.objects.filter(playbook=p).count() == fired_new[i] for i, p in enumerate(playbooks)
    )


@pytest.mark.parametrize(
    ("end", "start"),
    [
        (dt.date(2026, 3, 1), dt.date(2024, 2, 29)),  # a leap day
        (dt.date(2026, 1, 1), dt.date(2025, 12, 31)),
        (dt.date(2025, 6, 1), dt.date(2026, 6, 1)),  # negative
        (dt.date(2026, 11, 24), dt.date(2026, 11, 24)),
    ],
)
def test_days_between_is_the_python_difference(db, end, start):
    AccountFactory()
    days = Account.objects.annotate(days=DaysBetween(Value(end), Value(start))).values_list("days", flat=True)
    assert list(days) == [(end - start).days]


def test_the_pipeline_assigns_round_robin_in_name_order_with_only_new_firings(world):
    """Firings come in the accounts' name order, whatever order they were created in."""
    from playbooks.models import Task
    from playbooks.pipeline import evaluate_playbooks

    now = dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC)
    for name in ("Charlie", "Alpha", "Delta", "Bravo"):
        AccountFactory(name=name, renewal_date=now.date() + dt.timedelta(days=20), team=world.team_a)
    playbook = PlaybookFactory(trigger="renewal_within", trigger_params={"days": 30}, cooldown_days=7)
    TaskStepFactory(playbook=playbook, assignee_rule="round_robin")
    AccountFactory(name="Echo", renewal_date=now.date() + dt.timedelta(days=40), team=world.team_a)

    evaluate_playbooks(now=now)
    evaluate_playbooks(now=now + dt.timedelta(days=1))  # the same occurrences: nothing new
    evaluate_playbooks(now=now + dt.timedelta(days=12))  # Echo's renewal comes within 30 days

    tasks = Task.objects.filter(playbook=playbook).order_by("id")
    assert [(t.account.name, t.assignee.username) for t in tasks] == [
        ("Alpha", "csm_a"),
        ("Bravo", "csm_a2"),
        ("Charlie", "csm_a"),
        ("Delta", "csm_a2"),
        ("Echo", "csm_a"),
    ]
    assert PlaybookRun.objects.filter(playbook=playbook).count() == 5
