"""An incremental journeys pass reads the milestones of the changed accounts only, and still
moves every account that time alone moves."""

import datetime as dt
import itertools
import zoneinfo

import pytest
import time_machine

from accounts.models import Event
from health.scoring import recompute_health
from journeys.evaluation import (
    JourneyConfig,
    StageEntered,
    evaluate_journeys,
    first_round_scope,
    movable_by_time,
)
from journeys.models import AccountJourney, Journey, JourneyPass, Milestone, MilestoneDefinition, Stage
from playbooks import pipeline
from playbooks.pipeline import run_pipeline
from tests.factories import AccountFactory
from tests.journeys.conftest import T0, at, send_events


def evaluate(now: dt.datetime, changed=None):
    with time_machine.travel(now, tick=False):
        return evaluate_journeys(now=now, changed=changed)


def status_of(account, key: str) -> str:
    visit = AccountJourney.objects.get(account=account).visit
    return Milestone.objects.get(visit=visit, definition__key=key).status


def test_rule_milestones_of_unchanged_accounts_wait_for_the_full_pass(default_journey):
    changed, unchanged = (AccountFactory(contract_start=T0.date()) for _ in range(2))
    evaluate(at(0, 1))
    send_events(changed, ("login", at(2)))
    send_events(unchanged, ("login", at(2)))

    changes = evaluate(at(3), changed={changed.pk})

    assert [(c.account_id, c.key) for c in changes.milestones_completed] == [(changed.pk, "first-login")]
    assert (status_of(changed, "first-login"), status_of(unchanged, "first-login")) == ("done", "pending")
    # The daily full pass reads every account's milestones.
    changes = evaluate(at(3, 1))
    assert [(c.account_id, c.key) for c in changes.milestones_completed] == [(unchanged.pk, "first-login")]


def test_an_incremental_pass_still_moves_what_time_moves_and_syncs_the_moved_accounts(default_journey):
    renewal = dt.date(2026, 9, 1)
    account = AccountFactory(contract_start=T0.date(), renewal_date=renewal)
    evaluate(at(0, 1))
    evaluate(at(91))  # past onboarding's maximum duration
    opens = dt.datetime.combine(renewal - dt.timedelta(days=120), dt.time(0), tzinfo=dt.UTC)

    changes = evaluate(opens + dt.timedelta(hours=1), changed=set())  # nothing changed: time moved

    assert changes.stages_entered == [
        StageEntered(account.pk, "adoption", "renewal", opens, "renewal_window")
    ]
    account.refresh_from_db(fields=["stage"])
    assert account.stage == "renewal"


def test_an_incremental_pass_moves_an_unchanged_account_whose_maximum_duration_ended_since(default_journey):
    account = AccountFactory(contract_start=T0.date())
    evaluate(at(0, 1))
    evaluate(at(80), changed=set())  # onboarding's 90 days not over: nothing to do

    changes = evaluate(at(95), changed=set())

    assert [
        (c.account_id, c.from_stage, c.to_stage, c.changed_at, c.cause) for c in changes.stages_entered
    ] == [(account.pk, "onboarding", "adoption", T0.replace(hour=0) + dt.timedelta(days=90), "max_duration")]
    assert not evaluate(at(96), changed=set())  # moved once: the next pass has nothing to do


def test_the_first_round_walks_the_changed_accounts_and_those_time_made_movable(default_journey):
    """Not every account: one renewing far ahead, in a stage with time left, is not walked."""
    window_opens = dt.date(2026, 9, 1)  # renewal 120 days after it
    renewing = AccountFactory(contract_start=T0.date(), renewal_date=window_opens + dt.timedelta(days=120))
    AccountFactory(contract_start=T0.date(), renewal_date=dt.date(2028, 1, 1))  # far: not walked
    edited = AccountFactory(contract_start=T0.date(), renewal_date=dt.date(2028, 1, 1))
    evaluate(at(0, 1))
    evaluate(at(95))  # all in adoption (its maximum is 180 days)
    since = dt.datetime.combine(window_opens - dt.timedelta(days=3), dt.time(12), tzinfo=dt.UTC)
    evaluate(since, changed=set())
    now = since + dt.timedelta(days=5)

    scope = first_round_scope(config=JourneyConfig.load(), since=since, now=now, changed={edited.pk})

    assert scope == {renewing.pk, edited.pk}
    changes = evaluate(now, changed={edited.pk})
    assert [(c.account_id, c.to_stage) for c in changes.stages_entered] == [(renewing.pk, "renewal")]


@pytest.mark.parametrize(
    ("since", "now", "walked"),
    [
        # The window opens at midnight UTC on 2026-09-01.
        (dt.datetime(2026, 8, 31, 23, 59, tzinfo=dt.UTC), dt.datetime(2026, 9, 1, 0, 0, tzinfo=dt.UTC), True),
        (dt.datetime(2026, 9, 1, 0, 0, tzinfo=dt.UTC), dt.datetime(2026, 9, 1, 0, 15, tzinfo=dt.UTC), False),
        (
            dt.datetime(2026, 8, 31, 23, 0, tzinfo=dt.UTC),
            dt.datetime(2026, 8, 31, 23, 59, tzinfo=dt.UTC),
            False,
        ),
        # The same instants seen from Tokyo (UTC+9): the UTC day counts.
        (
            dt.datetime(2026, 9, 1, 8, 59, tzinfo=dt.timezone(dt.timedelta(hours=9))),
            dt.datetime(2026, 9, 1, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=9))),
            True,
        ),
    ],
)
def test_a_renewal_window_is_walked_in_the_pass_whose_span_holds_its_opening(
    default_journey, since, now, walked
):
    account = AccountFactory(contract_start=T0.date(), renewal_date=dt.date(2026, 12, 30))  # 120 days on

    assert (account.pk in movable_by_time(config=JourneyConfig.load(), since=since, now=now)) is walked


@pytest.mark.parametrize(
    ("since", "now", "walked"),
    [
        (-dt.timedelta(minutes=15), dt.timedelta(0), True),  # ends at the pass
        (dt.timedelta(0), dt.timedelta(minutes=15), False),  # the previous pass, at the end, moved it
        (-dt.timedelta(minutes=15), -dt.timedelta(microseconds=1), False),  # not over yet
    ],
)
def test_a_maximum_duration_is_walked_in_the_pass_whose_span_holds_its_end(
    default_journey, since, now, walked
):
    account = AccountFactory(contract_start=T0.date())
    evaluate(at(0, 1))
    ends = AccountJourney.objects.get(account=account).entered_at + dt.timedelta(days=90)  # onboarding

    scope = movable_by_time(config=JourneyConfig.load(), since=ends + since, now=ends + now)

    assert (account.pk in scope) is walked


def test_a_maximum_duration_given_in_a_zone_with_daylight_saving_is_walked_at_its_end(default_journey):
    """Passes given in Paris time around a duration that ends after the spring change (UTC+1 → +2)."""
    account = AccountFactory(contract_start=dt.date(2026, 3, 2))
    evaluate(dt.datetime(2026, 3, 2, 1, tzinfo=dt.UTC))
    ends = AccountJourney.objects.get(account=account).entered_at + dt.timedelta(days=90)  # onboarding
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    passes = [(ends + dt.timedelta(minutes=15 * i)).astimezone(paris) for i in range(-8, 8)]

    walked = [
        now
        for since, now in itertools.pairwise(passes)
        if account.pk in movable_by_time(config=JourneyConfig.load(), since=since, now=now)
    ]

    assert walked == [ends]


def test_the_configuration_digest_does_not_change_when_an_unchanged_journey_is_saved(default_journey):
    for segment in ("smb", "ent"):
        Journey.objects.create(key=f"journey-{segment}", name="Customer journey", segment=segment)
    before = JourneyConfig.load().digest()

    first = Journey.objects.filter(name="Customer journey").first()
    first.save()  # an update: its row moves to the end of the table, after the other one

    assert JourneyConfig.load().digest() == before


def test_a_pass_after_a_configuration_change_reads_every_account(default_journey):
    """An admin shortens onboarding to 30 days: the next 15-minute pass moves the unchanged account."""
    account = AccountFactory(contract_start=T0.date())
    evaluate(at(0, 1))
    evaluate(at(50), changed=set())
    Stage.objects.filter(journey=default_journey, key="onboarding").update(max_days=30)

    changes = evaluate(at(50, 1), changed=set())

    assert [(c.account_id, c.cause) for c in changes.stages_entered] == [(account.pk, "max_duration")]
    assert JourneyPass.objects.get(as_of=at(50, 1)).full
    assert not JourneyPass.objects.get(as_of=at(50)).full


def test_accounts_are_placed_in_the_next_pass_once_a_default_journey_exists(default_journey):
    Journey.objects.update(is_default=False)
    account = AccountFactory(contract_start=T0.date())
    evaluate(at(0, 1))
    assert not AccountJourney.objects.filter(account=account).exists()
    Journey.objects.filter(pk=default_journey.pk).update(is_default=True)

    changes = evaluate(at(0, 2), changed=set())

    assert [(c.account_id, c.cause) for c in changes.stages_entered] == [(account.pk, "placed")]


def test_without_a_previous_pass_the_pass_reads_every_account(default_journey):
    account = AccountFactory(contract_start=T0.date())

    changes = evaluate(at(1), changed=set())  # placed although not among the changed

    assert [(c.account_id, c.cause) for c in changes.stages_entered] == [(account.pk, "placed")]
    assert JourneyPass.objects.get().full


def test_an_account_whose_required_milestones_were_done_by_hand_moves_in_the_incremental_pass(
    default_journey,
):
    account = AccountFactory(contract_start=T0.date())
    evaluate(at(0, 1))
    visit = AccountJourney.objects.get(account=account).visit
    Milestone.objects.filter(visit=visit, definition__required=True).update(status="done", completed_at=at(1))

    assert not evaluate(at(2), changed=set()).stages_entered  # not among the changed: not read
    changes = evaluate(at(2, 1), changed={account.pk})

    assert [(c.from_stage, c.to_stage, c.cause) for c in changes.stages_entered] == [
        ("onboarding", "adoption", "milestones")
    ]


@pytest.mark.parametrize("changed_share", [1.0, 1e-9])
def test_the_incremental_pipeline_completes_the_milestones_of_accounts_with_new_events(
    default_journey, monkeypatch, changed_share
):
    """With few accounts changed the step reads theirs; above the share, every account's."""
    monkeypatch.setattr(pipeline, "FULL_ABOVE_SHARE", changed_share)
    account, unseen = (AccountFactory(contract_start=T0.date()) for _ in range(2))
    with time_machine.travel(at(0, 1), tick=False):
        run_pipeline(now=at(0, 1))
    with time_machine.travel(at(1), tick=False):
        run_pipeline(now=at(1), full=False)  # sees the placement's stage changes
    send_events(account, ("login", at(2)))
    # A login recorded before the previous pass (a met rule that pass could not see, as after a
    # changed threshold): no incremental pass reads that account's milestones.
    send_events(unseen, ("login", at(0, 2)))
    Event.objects.filter(account=unseen).update(received_at=at(0))
    with time_machine.travel(at(2, 1), tick=False):
        result = run_pipeline(now=at(2, 1), full=False)
    assert status_of(account, "first-login") == "done"
    if changed_share == 1.0:  # the changed accounts only
        assert result["journeys"]["milestones_completed"] == 1
        assert status_of(unseen, "first-login") == "pending"
    else:  # more than the share changed: every account's milestones
        assert result["journeys"]["milestones_completed"] == 2
        assert status_of(unseen, "first-login") == "done"


def test_the_span_starts_at_the_previous_journeys_pass_not_the_previous_recompute(
    default_journey, monkeypatch
):
    """A recompute run on its own (the API, ``manage.py recompute_health``) reads no milestones."""
    monkeypatch.setattr(pipeline, "FULL_ABOVE_SHARE", 1.0)
    account = AccountFactory(contract_start=T0.date())
    with time_machine.travel(at(0, 1), tick=False):
        run_pipeline(now=at(0, 1))
    send_events(account, ("login", at(2)))
    with time_machine.travel(at(3), tick=False):
        recompute_health(now=at(3))
    with time_machine.travel(at(3, 1), tick=False):
        result = run_pipeline(now=at(3, 1), full=False)
    assert result["journeys"]["milestones_completed"] == 1
    assert status_of(account, "first-login") == "done"


def test_a_later_round_reads_the_milestones_of_an_account_time_moved(db):
    """Moved by its stage's maximum duration (not a change of its data), the account's new stage
    has a rule milestone already met: the next round of the same pass completes it."""
    journey = Journey.objects.create(key="timed", name="Timed", segment="timed")
    Stage.objects.create(journey=journey, key="trial", name="Trial", order=1, entered_by="first", max_days=10)
    paid = Stage.objects.create(journey=journey, key="paid", name="Paid", order=2)
    MilestoneDefinition.objects.create(
        stage=paid, key="used", name="Used", due_days=30, completion="event_count", event="login", threshold=1
    )
    account = AccountFactory(segment="timed", contract_start=T0.date())
    evaluate(at(0, 1))
    send_events(account, ("login", at(10, 2)))  # on the day the trial ends

    changes = evaluate(at(11), changed=set())

    assert [(c.to_stage, c.cause) for c in changes.stages_entered] == [("paid", "max_duration")]
    assert [(c.account_id, c.key) for c in changes.milestones_completed] == [(account.pk, "used")]


def test_the_chains_incremental_journeys_task_reads_the_changed_accounts(default_journey):
    """The 15-minute Celery chain's journeys task finds what changed since the previous run itself."""
    from playbooks.tasks import evaluate_journeys_incremental_task

    account = AccountFactory(contract_start=T0.date())
    with time_machine.travel(at(0, 1), tick=False):
        run_pipeline(now=at(0, 1))
    send_events(account, ("login", at(2)))
    with time_machine.travel(at(2, 1), tick=False):
        counts = evaluate_journeys_incremental_task.apply().get()
    assert counts["milestones_completed"] == 1
    assert status_of(account, "first-login") == "done"
