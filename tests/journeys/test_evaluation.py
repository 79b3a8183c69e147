"""The journeys pass walks accounts through their lifecycle and reports what changed, once."""

import datetime as dt
import zoneinfo

import pytest
import time_machine
from django.db.models import Q

from accounts.changes import update_account
from accounts.models import Account
from journeys import evaluation
from journeys.actions import complete_milestone
from journeys.evaluation import StageEntered, evaluate_journeys
from journeys.models import AccountJourney, Milestone, StageChange
from tests.factories import AccountFactory, ContactFactory
from tests.journeys.conftest import T0, at, send_events


def evaluate(now: dt.datetime):
    with time_machine.travel(now, tick=False):
        return evaluate_journeys(now=now)


def statuses(account: Account) -> dict[str, str]:
    state = AccountJourney.objects.get(account=account)
    return dict(Milestone.objects.filter(visit=state.visit).values_list("definition__key", "status"))


def stage_of(account: Account) -> str:
    account.refresh_from_db(fields=["stage"])
    assert AccountJourney.objects.get(account=account).stage.key == account.stage
    return account.stage


def history(account: Account) -> list[tuple[str | None, str, str]]:
    return [
        (c.from_stage.key if c.from_stage else None, c.to_stage.key, c.cause)
        for c in StageChange.objects.filter(account=account).select_related("from_stage", "to_stage")
    ]


def new_account(**fields) -> Account:
    return AccountFactory(contract_start=T0.date(), renewal_date=dt.date(2027, 1, 5), **fields)


def test_a_new_account_is_placed_in_onboarding_with_its_milestones_and_a_second_pass_is_a_no_op(
    default_journey,
):
    account = new_account()
    changes = evaluate(at(0, 1))
    start = dt.datetime.combine(T0.date(), dt.time(0), tzinfo=dt.UTC)
    assert changes.stages_entered == [StageEntered(account.id, None, "onboarding", start, "placed")]
    assert stage_of(account) == "onboarding"
    assert statuses(account) == {
        "kickoff-call": "pending",
        "first-login": "pending",
        "first-key-action": "pending",
        "weekly-usage": "pending",
        "team-invited": "pending",
        "integration-done": "pending",
        "onboarding-review": "pending",
    }
    kickoff = Milestone.objects.get(account=account, definition__key="kickoff-call")
    assert kickoff.due_at == start + dt.timedelta(days=7)

    again = evaluate(at(0, 1))
    assert not again
    assert again.counts() == {"stages_entered": 0, "milestones_completed": 0, "milestones_overdue": 0}
    assert StageChange.objects.filter(account=account).count() == 1


def test_an_account_that_starts_later_is_placed_now(default_journey):
    AccountFactory(contract_start=dt.date(2026, 6, 1))
    changes = evaluate(at(1))
    assert changes.stages_entered[0].changed_at == at(1)


def test_rule_milestones_complete_from_events_within_their_window(default_journey):
    account = new_account()
    evaluate(at(0, 1))
    send_events(account, ("login", at(2)), ("report_viewed", at(20)))
    changes = evaluate(at(3))
    assert [(c.key, c.stage) for c in changes.milestones_completed] == [("first-login", "onboarding")]
    assert statuses(account)["first-login"] == "done"
    # The report was viewed on day 20: outside the 14-day window of "first key action".
    evaluate(at(21))
    assert statuses(account)["first-key-action"] == "overdue"
    done = Milestone.objects.get(account=account, definition__key="first-login")
    assert (done.completed_at, done.completed_via, done.completed_by) == (at(3), "rule", None)


def test_weekly_usage_needs_three_distinct_weeks_of_the_first_four(default_journey):
    account = new_account()
    evaluate(at(0, 1))
    # Three logins in week 1 and one in week 2: two weeks only.
    send_events(account, ("login", at(0, 2)), ("login", at(1)), ("login", at(2)), ("login", at(8)))
    evaluate(at(9))
    assert statuses(account)["weekly-usage"] == "pending"
    send_events(account, ("login", at(29)))  # week 5: outside the first four weeks
    evaluate(at(29, 1))
    assert statuses(account)["weekly-usage"] == "overdue"
    send_events(account, ("login", at(27)))  # week 4, arriving late: still counts
    changes = evaluate(at(29, 2))
    assert [c.key for c in changes.milestones_completed] == ["weekly-usage"]
    assert statuses(account)["weekly-usage"] == "done"


def test_distinct_contacts_rule_counts_people_not_events(default_journey):
    account = new_account()
    evaluate(at(0, 1))
    ann, bob, cy = (ContactFactory(account=account, email=f"{n}@acme.example") for n in ("ann", "bob", "cy"))
    send_events(
        account, ("login", at(1), ann.email), ("login", at(2), ann.email), ("login", at(3), bob.email)
    )
    evaluate(at(4))
    assert statuses(account)["team-invited"] == "pending"
    send_events(account, ("login", at(5), cy.email))
    changes = evaluate(at(6))
    assert [c.key for c in changes.milestones_completed] == ["team-invited"]


def test_overdue_milestones_are_reported_once(default_journey):
    account = new_account()
    evaluate(at(0, 1))
    changes = evaluate(at(8))
    assert sorted(c.key for c in changes.milestones_overdue) == ["first-login", "kickoff-call"]
    assert {c.account_id for c in changes.milestones_overdue} == {account.id}
    assert not evaluate(at(8))
    assert not evaluate(at(9))
    assert statuses(account)["kickoff-call"] == "overdue"


def test_onboarding_ends_when_the_required_milestones_are_done(default_journey, world):
    account = new_account()
    evaluate(at(0, 1))
    logins = [("login", at(d)) for d in (1, 8, 15)]
    send_events(account, *logins, ("report_viewed", at(2)), ("integration_connected", at(3)))
    changes = evaluate(at(16))
    assert {c.key for c in changes.milestones_completed} == {
        "first-login",
        "first-key-action",
        "weekly-usage",
        "integration-done",
    }
    assert stage_of(account) == "onboarding"
    complete_milestone(account=account, key="kickoff-call", user=world.csm_a, now=at(17))
    complete_milestone(account=account, key="onboarding-review", user=world.csm_a, now=at(18))
    changes = evaluate(at(19))
    assert changes.stages_entered == [
        StageEntered(account.id, "onboarding", "adoption", at(18), "milestones")
    ]
    assert stage_of(account) == "adoption"
    # The optional milestone left pending is skipped; adoption's own milestone is created.
    assert Milestone.objects.get(account=account, definition__key="team-invited").status == "skipped"
    assert statuses(account) == {"first-business-review": "pending"}
    assert not evaluate(at(19))


def test_onboarding_ends_after_its_maximum_of_90_days(default_journey):
    account = new_account()
    evaluate(at(0, 1))
    assert not evaluate(at(89)).stages_entered
    changes = evaluate(at(91))
    start = dt.datetime.combine(T0.date(), dt.time(0), tzinfo=dt.UTC)
    assert changes.stages_entered == [
        StageEntered(account.id, "onboarding", "adoption", start + dt.timedelta(days=90), "max_duration")
    ]
    # Missed milestones stay overdue in the history of the stage that was left.
    assert Milestone.objects.get(account=account, definition__key="kickoff-call").status == "overdue"


def test_renewal_is_entered_120_days_before_the_renewal_date_and_left_when_renewed(default_journey, world):
    account = new_account()
    evaluate(at(0, 1))
    evaluate(at(91))
    assert stage_of(account) == "adoption"
    renewal = dt.date(2027, 1, 5)
    opens = dt.datetime.combine(renewal - dt.timedelta(days=120), dt.time(0), tzinfo=dt.UTC)
    assert not evaluate(opens - dt.timedelta(hours=1)).stages_entered
    changes = evaluate(opens + dt.timedelta(hours=1))
    assert changes.stages_entered == [
        StageEntered(account.id, "adoption", "renewal", opens, "renewal_window")
    ]
    assert statuses(account) == {"open-tickets-reviewed": "pending", "renewal-review": "pending"}
    assert not evaluate(opens + dt.timedelta(hours=2))

    # The renewal closes: the renewal date moves a year forward.
    renewed_at = opens + dt.timedelta(days=100)
    update_account(actor=world.manager_a, account=account, values={"renewal_date": dt.date(2028, 1, 5)})
    changes = evaluate(renewed_at)
    assert changes.stages_entered == [StageEntered(account.id, "renewal", "adoption", renewed_at, "renewed")]
    assert stage_of(account) == "adoption"
    assert not evaluate(renewed_at)
    # ... and the next renewal window opens 120 days before the new date.
    next_opens = dt.datetime.combine(dt.date(2028, 1, 5) - dt.timedelta(days=120), dt.time(0), tzinfo=dt.UTC)
    changes = evaluate(next_opens + dt.timedelta(days=1))
    assert [(c.from_stage, c.to_stage) for c in changes.stages_entered] == [("adoption", "renewal")]


def test_a_churned_account_enters_churned_from_any_stage_and_comes_back_when_reactivated(
    default_journey, world
):
    adopting = new_account()
    onboarding = AccountFactory(contract_start=at(90).date())
    evaluate(at(92))
    assert (stage_of(onboarding), stage_of(adopting)) == ("onboarding", "adoption")
    for account in (onboarding, adopting):
        update_account(actor=world.admin, account=account, values={"status": "churned"}, now=at(95))
    changes = evaluate(at(96))
    churn_day = dt.datetime.combine(at(95).date(), dt.time(0), tzinfo=dt.UTC)
    assert sorted((c.from_stage, c.to_stage, c.changed_at, c.cause) for c in changes.stages_entered) == [
        ("adoption", "churned", churn_day, "churned"),
        ("onboarding", "churned", churn_day, "churned"),
    ]
    assert stage_of(adopting) == "churned"
    assert not evaluate(at(97))

    update_account(actor=world.admin, account=adopting, values={"status": "active"}, now=at(100))
    changes = evaluate(at(101))
    assert changes.stages_entered == [
        StageEntered(adopting.id, "churned", "onboarding", at(101), "reactivated")
    ]


def test_an_existing_customer_is_placed_with_the_history_its_dates_imply(default_journey):
    now = at(0)
    account = AccountFactory(
        contract_start=dt.date(2024, 3, 1), renewal_date=now.date() + dt.timedelta(days=60)
    )
    changes = evaluate(now)
    assert [(c.from_stage, c.to_stage, c.cause) for c in changes.stages_entered] == [
        (None, "onboarding", "placed"),
        ("onboarding", "adoption", "max_duration"),
        ("adoption", "renewal", "renewal_window"),
    ]
    assert history(account) == [(c.from_stage, c.to_stage, c.cause) for c in changes.stages_entered]
    assert stage_of(account) == "renewal"
    # Only the stage it is in gets milestone instances.
    assert Milestone.objects.filter(account=account).count() == 2
    assert not evaluate(now)


def test_a_customer_that_churned_long_ago_is_placed_in_churned(default_journey):
    account = AccountFactory(
        contract_start=dt.date(2023, 1, 1),
        renewal_date=dt.date(2025, 1, 1),
        status="churned",
        churned_at=dt.date(2025, 1, 1),
    )
    evaluate(at(0))
    assert [h[1] for h in history(account)] == ["onboarding", "adoption", "renewal", "churned"]
    assert stage_of(account) == "churned"
    assert Milestone.objects.filter(account=account).count() == 0


@pytest.mark.parametrize("names_up_to", [10_000, 0], ids=["later rounds by id", "later rounds by may_move"])
def test_accounts_of_a_configured_segment_follow_the_five_stage_journey(
    default_journey, names_up_to, monkeypatch
):
    monkeypatch.setattr(evaluation, "SCOPE_AS_LIST_MAX", names_up_to)  # a large later round: may_move again
    account = AccountFactory(segment="Self-Serve", contract_start=T0.date())
    evaluate(at(0, 1))
    assert stage_of(account) == "reach"
    send_events(account, ("login", at(1)))
    changes = evaluate(at(2))
    # First login completes "reach"; acquisition's milestone is created in the same pass.
    assert [(c.from_stage, c.to_stage, c.cause) for c in changes.stages_entered] == [
        ("reach", "acquisition", "milestones")
    ]
    assert statuses(account) == {"team-invited": "pending"}
    send_events(account, ("invite_sent", at(3)), ("order_placed", at(4)))
    changes = evaluate(at(5))
    # Conversion's window starts the day it is entered: the order of day 4 does not count.
    assert [(c.from_stage, c.to_stage) for c in changes.stages_entered] == [("acquisition", "conversion")]
    assert not evaluate(at(5))
    send_events(account, ("order_placed", at(6)))
    evaluate(at(7))
    assert stage_of(account) == "retention"
    assert set(statuses(account)) == {"regular-use", "repeat-orders"}


def test_milestones_already_due_when_an_account_is_first_placed_are_skipped_not_overdue(default_journey):
    account = new_account()
    send_events(account, ("login", at(1)))
    changes = evaluate(at(29))  # Lifeline learns of the account a month into its onboarding
    assert changes.milestones_overdue == []
    assert [c.key for c in changes.milestones_completed] == ["first-login"]
    assert statuses(account) == {
        "kickoff-call": "skipped",
        "first-login": "done",
        "first-key-action": "skipped",
        "weekly-usage": "skipped",
        "team-invited": "pending",
        "integration-done": "pending",
        "onboarding-review": "pending",
    }
    assert not evaluate(at(29))
    # Those due after Lifeline knew become overdue as usual.
    assert [c.key for c in evaluate(at(30)).milestones_overdue] == ["team-invited"]


def test_the_first_round_reads_a_superset_of_the_accounts_a_full_walk_moves(
    default_journey, world, monkeypatch
):
    """``may_move`` lets the pass skip accounts with nothing due; it must never skip one that moves."""
    onboarding = new_account()
    done_early = new_account()
    renewing = new_account(segment="")
    churning = new_account()
    five_stage = AccountFactory(contract_start=T0.date(), segment="Self-serve", renewal_date=None)
    late_start = AccountFactory(contract_start=at(40).date(), renewal_date=dt.date(2026, 6, 1))
    long_churned = AccountFactory(
        status="churned", churned_at=dt.date(2025, 6, 1), contract_start=dt.date(2024, 1, 1)
    )
    everyone = [onboarding, done_early, renewing, churning, five_stage, late_start, long_churned]

    def check(now: dt.datetime) -> set[int]:
        with time_machine.travel(now, tick=False):
            evaluation.complete_rule_milestones(now=now)
            config = evaluation.JourneyConfig.load()
            may = set(
                Account.objects.filter(evaluation.may_move(config=config, now=now)).values_list(
                    "id", flat=True
                )
            )
            with monkeypatch.context() as patched:
                patched.setattr(evaluation, "may_move", lambda **kwargs: Q())  # the full walk
                moved = {change.account_id for change in evaluate_journeys(now=now).stages_entered}
        assert moved <= may, (now, moved - may)
        return moved

    assert check(at(0, 1)) == {a.id for a in everyone}
    complete_milestone(account=done_early, key="kickoff-call", user=world.csm_a, now=at(2))
    assert not check(at(3))
    update_account(actor=world.admin, account=churning, values={"status": "churned"}, now=at(20))
    paris = zoneinfo.ZoneInfo("Europe/Paris")  # ``now`` in another zone than UTC
    moved = [check(at(d).astimezone(paris if d == 95 else dt.UTC)) for d in (21, 35, 70, 95, 130, 200)]
    assert moved[0] == {churning.id} and five_stage.id in moved[1] and onboarding.id in moved[3]
    update_account(actor=world.admin, account=churning, values={"status": "active"}, now=at(210))
    assert churning.id in check(at(211))
    assert renewing.id in check(at(250))  # its renewal window opened on day 245
    update_account(actor=world.manager_a, account=renewing, values={"renewal_date": dt.date(2028, 1, 5)})
    assert renewing.id in check(at(251))  # renewed: back to adoption
    assert not check(at(251, 1))
