"""The required-milestones aggregate looks at the account's current stage, as ``_next_move`` does."""

import datetime as dt

from journeys.evaluation import evaluate_journeys
from journeys.models import AccountJourney, Journey, Milestone, MilestoneDefinition, Stage
from tests.factories import AccountFactory

T = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)


def test_a_required_milestone_whose_definition_moved_to_the_last_stage_still_holds_the_account(db):
    journey = Journey.objects.create(key="moved", name="Moved", segment="smb")
    first = Stage.objects.create(journey=journey, key="a", name="A", order=1, entered_by="first")
    Stage.objects.create(journey=journey, key="b", name="B", order=2)
    last = Stage.objects.create(journey=journey, key="c", name="C", order=3)
    done = MilestoneDefinition.objects.create(stage=first, key="m1", name="M1", due_days=30)
    pending = MilestoneDefinition.objects.create(stage=first, key="m2", name="M2", due_days=30)
    account = AccountFactory(segment="smb", contract_start=T.date())
    evaluate_journeys(now=T)
    assert AccountJourney.objects.get(account=account).stage_id == first.id
    Milestone.objects.filter(account=account, definition=done).update(status="done", completed_at=T)
    # An admin moves the pending one's definition to the last stage; its milestone stays in the visit.
    MilestoneDefinition.objects.filter(pk=pending.pk).update(stage=last)

    evaluate_journeys(now=T + dt.timedelta(days=1))

    assert AccountJourney.objects.get(account=account).stage_id == first.id  # m2 is still pending
    Milestone.objects.filter(account=account, definition=pending).update(status="done", completed_at=T)
    evaluate_journeys(now=T + dt.timedelta(days=2))
    assert AccountJourney.objects.get(account=account).stage_id != first.id  # now it moves on
