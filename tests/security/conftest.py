"""A world of two teams whose every object carries a marker string, for the security tests.

Team A's objects carry ``ALPHA`` in their names, team B's ``BRAVO`` (their external ids, which
callers send, do not); a response to anyone who
may not see a team must never contain that team's marker.
"""

import datetime as dt
from dataclasses import dataclass

import pytest
from django.utils import timezone

from accounts.models import Event, SurveyResponse, Ticket, Touchpoint
from health.models import Scorecard
from journeys.evaluation import evaluate_journeys
from playbooks.models import Alert, Playbook, Task
from tests.factories import AccountFactory, ContactFactory

ALPHA = "alpha-7c1e"
BRAVO = "bravo-9d4f"


@dataclass
class TeamObjects:
    marker: str
    account: object
    contact: object
    task: object
    alert: object


@dataclass
class SecurityWorld:
    users: dict  # role name in the matrix -> user (None for anonymous)
    a: TeamObjects
    b: TeamObjects
    scorecard: Scorecard  # a draft copy of the default scorecard (global, not team-scoped)
    playbook: Playbook


def _team_objects(marker: str, *, owner, team, now) -> TeamObjects:
    account = AccountFactory(
        external_id=f"{marker[:5]}-acct",
        name=f"{marker} Holdings",
        domain=f"{marker}.example",
        owner=owner,
        team=team,
        contract_start=(now - dt.timedelta(days=3)).date(),
        renewal_date=(now + dt.timedelta(days=300)).date(),
    )
    contact = ContactFactory(
        account=account,
        name=f"{marker} Person",
        email=f"{marker[:5]}-person@example.com",
        external_id=f"{marker[:5]}-c",
    )
    Event.objects.create(account=account, name=f"{marker}-event", occurred_at=now - dt.timedelta(hours=1))
    Ticket.objects.create(
        account=account, external_id=f"{marker}-t", subject=f"{marker} ticket", opened_at=now
    )
    SurveyResponse.objects.create(
        account=account, contact=contact, kind="nps", score=3, comment=f"{marker} says", responded_at=now
    )
    Touchpoint.objects.create(
        account=account, author=owner, kind="call", occurred_at=now, summary=f"{marker} call"
    )
    task = Task.objects.create(account=account, title=f"{marker} task", assignee=owner, due_date=now.date())
    alert = Alert.objects.create(
        account=account,
        recipient=owner,
        recipient_key=f"user:{owner.pk}",
        kind="manual",
        title=f"{marker} alert",
        body=f"{marker} body",
    )
    return TeamObjects(marker, account, contact, task, alert)


@pytest.fixture
def security_world(world) -> SecurityWorld:
    now = timezone.now()
    a = _team_objects(ALPHA, owner=world.csm_a, team=world.team_a, now=now)
    b = _team_objects(BRAVO, owner=world.csm_b, team=world.team_b, now=now)
    evaluate_journeys(now=now)  # both accounts enter onboarding, with its milestones
    default = Scorecard.objects.filter(status=Scorecard.Status.ACTIVE).first()
    scorecard = Scorecard.objects.create(
        name="Matrix draft",
        segment="",
        version=(default.version + 1) if default else 1,
        status=Scorecard.Status.DRAFT,
        red_below=40,
        green_from=70,
    )
    if default is not None:
        for measure in default.measures.all():
            measure.pk = None
            measure.scorecard = scorecard
            measure.save()
    playbook = Playbook.objects.create(
        name="Matrix playbook",
        trigger="renewal_within",
        trigger_params={"days": 90},
        active=False,
        active_since=now,
    )
    users = {
        "anonymous": None,
        "csm_same": world.csm_a,
        "csm_other": world.csm_b,
        "manager_same": world.manager_a,
        "manager_other": world.manager_b,
        "admin": world.admin,
    }
    return SecurityWorld(users=users, a=a, b=b, scorecard=scorecard, playbook=playbook)
