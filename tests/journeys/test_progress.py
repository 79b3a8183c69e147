"""milestone_progress reads the stage an account was in at a time and its milestones as of then."""

import datetime as dt

import pytest

from journeys.models import Journey, Milestone, MilestoneDefinition, Stage, StageChange
from journeys.progress import MilestoneProgress as Progress
from journeys.progress import milestone_progress
from tests.factories import AccountFactory

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def days(n: float) -> dt.timedelta:
    return dt.timedelta(days=n)


@pytest.fixture
def journey(db):
    journey = Journey.objects.create(key="test", name="Test")
    first = Stage.objects.create(journey=journey, key="first", name="First", order=1, entered_by="first")
    second = Stage.objects.create(journey=journey, key="second", name="Second", order=2)
    third = Stage.objects.create(journey=journey, key="third", name="Third", order=3)
    defs = [
        MilestoneDefinition.objects.create(stage=first, key=f"m{i}", name=f"M{i}", due_days=7 * i)
        for i in (1, 2, 3, 4)
    ]
    MilestoneDefinition.objects.create(stage=third, key="t1", name="T1", due_days=5)
    return journey, first, second, third, defs


def visit(account, journey, stage, at, from_stage=None) -> StageChange:
    return StageChange.objects.create(
        account=account, journey=journey, from_stage=from_stage, to_stage=stage, changed_at=at, cause="rule"
    )


def milestone(account, change, definition, *, completed_at=None, skipped_at=None) -> Milestone:
    return Milestone.objects.create(
        account=account,
        visit=change,
        definition=definition,
        due_at=change.changed_at + days(definition.due_days),
        window_start=change.changed_at.date(),
        status="done" if completed_at else ("skipped" if skipped_at else "pending"),
        completed_at=completed_at,
        skipped_at=skipped_at,
    )


def test_progress_counts_what_was_done_and_overdue_at_the_time(journey):
    j, first, second, _, (m1, m2, m3, m4) = journey
    account = AccountFactory()
    onboarding = visit(account, j, first, T0)
    milestone(account, onboarding, m1, completed_at=T0 + days(3))
    milestone(account, onboarding, m2, completed_at=T0 + days(20))  # late: due day 14
    milestone(account, onboarding, m3)  # due day 21, never done
    milestone(account, onboarding, m4, skipped_at=T0 + days(40))  # skipped when the stage was left
    visit(account, j, second, T0 + days(40), from_stage=first)

    assert milestone_progress(as_of=T0 - days(1)) == {}
    assert milestone_progress(as_of=T0 + days(1))[account.id] == Progress(completion=0.0, overdue=0)
    assert milestone_progress(as_of=T0 + days(10))[account.id] == Progress(completion=25.0, overdue=0)
    assert milestone_progress(as_of=T0 + days(15))[account.id] == Progress(completion=25.0, overdue=1)
    assert milestone_progress(as_of=T0 + days(22))[account.id] == Progress(completion=50.0, overdue=1)
    assert milestone_progress(as_of=T0 + days(29))[account.id] == Progress(completion=50.0, overdue=2)
    # After leaving: the second stage has no milestones.
    assert milestone_progress(as_of=T0 + days(41))[account.id] == Progress(completion=None, overdue=0)


def test_a_skipped_milestone_no_longer_counts_once_skipped(journey):
    j, first, _, _, (m1, m2, _, _) = journey
    account = AccountFactory()
    onboarding = visit(account, j, first, T0)
    milestone(account, onboarding, m1, completed_at=T0 + days(1))
    milestone(account, onboarding, m2, skipped_at=T0 + days(5))
    assert milestone_progress(as_of=T0 + days(2))[account.id].completion == 50.0
    assert milestone_progress(as_of=T0 + days(6))[account.id].completion == 100.0


def test_progress_uses_the_visit_current_at_as_of_not_an_earlier_visit_of_the_same_stage(journey):
    j, first, second, third, _defs = journey
    (t1,) = MilestoneDefinition.objects.filter(stage=third)
    account = AccountFactory()
    other = AccountFactory()
    first_visit = visit(account, j, third, T0)
    milestone(account, first_visit, t1, completed_at=T0 + days(1))
    visit(account, j, second, T0 + days(10), from_stage=third)
    second_visit = visit(account, j, third, T0 + days(20), from_stage=second)
    milestone(account, second_visit, t1)
    visit(other, j, first, T0)

    result = milestone_progress(as_of=T0 + days(30))
    assert result[account.id] == Progress(completion=0.0, overdue=1)
    assert result[other.id] == Progress(completion=None, overdue=0)
    assert milestone_progress(as_of=T0 + days(2))[account.id] == Progress(completion=100.0, overdue=0)


def test_progress_runs_a_fixed_number_of_queries(journey, django_assert_max_num_queries):
    j, first, _, _, (m1, m2, _, _) = journey
    for _ in range(30):
        account = AccountFactory()
        change = visit(account, j, first, T0)
        milestone(account, change, m1, completed_at=T0 + days(1))
        milestone(account, change, m2)
    with django_assert_max_num_queries(2):
        result = milestone_progress(as_of=T0 + days(20))
    assert len(result) == 30
    assert set(result.values()) == {Progress(completion=50.0, overdue=1)}


def test_as_of_must_be_aware(db):
    with pytest.raises(ValueError):
        milestone_progress(as_of=dt.datetime(2026, 1, 1))
