"""/api/v1/tasks/, /alerts/, /playbooks/: scope, filters, roles, validation, dry run, track record."""

import datetime as dt

import pytest
from django.utils import timezone

from accounts.models import AuditEntry
from playbooks.models import Alert, Playbook, PlaybookRun, Task
from tests.factories import AccountFactory, PlaybookFactory, TaskStepFactory


@pytest.fixture
def tasks(world, account_a, account_b):
    today = timezone.localdate()
    return {
        "mine_overdue": Task.objects.create(
            account=account_a, title="Overdue", assignee=world.csm_a, due_date=today - dt.timedelta(days=1)
        ),
        "mine_later": Task.objects.create(
            account=account_a, title="Later", assignee=world.csm_a, due_date=today + dt.timedelta(days=5)
        ),
        "teammate": Task.objects.create(
            account=account_a, title="Teammate", assignee=world.csm_a2, due_date=today
        ),
        "foreign": Task.objects.create(
            account=account_b, title="Foreign", assignee=world.csm_b, due_date=today
        ),
    }


def titles(response):
    assert response.status_code == 200, response.content
    return sorted(row["title"] for row in response.json()["results"])


def test_task_lists_are_scoped_and_filtered(world, api, tasks):
    client = api(world.csm_a)
    assert titles(client.get("/api/v1/tasks/")) == ["Later", "Overdue", "Teammate"]
    assert titles(client.get("/api/v1/tasks/", {"mine": 1})) == ["Later", "Overdue"]
    assert titles(client.get("/api/v1/tasks/", {"mine": 1, "status": "open", "overdue": 1})) == ["Overdue"]
    assert client.get(f"/api/v1/tasks/{tasks['foreign'].pk}/").status_code == 404
    assert (
        client.patch(f"/api/v1/tasks/{tasks['foreign'].pk}/", {"status": "done"}, format="json").status_code
        == 404
    )


def test_task_pages_ordered_by_a_shared_due_date_neither_repeat_nor_skip(world, api, account_a):
    today = timezone.localdate()
    for n in range(12):
        Task.objects.create(
            account=account_a, title=f"T{n:02}", assignee=world.csm_a, due_date=today + dt.timedelta(n % 2)
        )
    client = api(world.csm_a)
    seen = []
    for page in (1, 2, 3, 4, 5, 6):
        response = client.get("/api/v1/tasks/", {"ordering": "-due_date", "page_size": 2, "page": page})
        seen += [row["title"] for row in response.json()["results"]]
    assert sorted(seen) == [f"T{n:02}" for n in range(12)]


def test_completing_and_reassigning_a_task(world, api, tasks):
    client = api(world.csm_a)
    url = f"/api/v1/tasks/{tasks['mine_overdue'].pk}/"

    done = client.patch(url, {"status": "done"}, format="json")
    foreign_assignee = client.patch(url, {"assignee": world.csm_b.pk}, format="json")
    teammate = client.patch(url, {"assignee": world.csm_a2.pk, "due_date": "2027-01-05"}, format="json")

    assert done.status_code == 200 and done.json()["completed_at"] is not None
    assert foreign_assignee.status_code == 400 and "assignee" in foreign_assignee.json()
    assert teammate.status_code == 200 and teammate.json()["assignee"] == world.csm_a2.pk


def test_manual_task_defaults_to_its_creator(world, api, account_a, account_b):
    client = api(world.csm_a)
    created = client.post(
        "/api/v1/tasks/", {"account": "acme", "title": "Send deck", "due_date": "2027-01-10"}, format="json"
    )
    foreign = client.post(
        "/api/v1/tasks/", {"account": "globex", "title": "x", "due_date": "2027-01-10"}, format="json"
    )
    assert created.status_code == 201, created.json()
    assert created.json()["assignee"] == world.csm_a.pk
    assert foreign.status_code == 400 and "account" in foreign.json()


def test_alerts_mine_unread_read_and_feedback(world, api, account_a, account_b):
    mine = Alert.objects.create(
        account=account_a, recipient=world.csm_a, recipient_key="x", kind="k", title="Mine"
    )
    Alert.objects.create(
        account=account_a, recipient=world.csm_a2, recipient_key="y", kind="k", title="Teammate's"
    )
    foreign = Alert.objects.create(
        account=account_b, recipient=world.csm_b, recipient_key="z", kind="k", title="Foreign"
    )
    client = api(world.csm_a)

    assert titles(client.get("/api/v1/alerts/", {"mine": 1, "unread": 1})) == ["Mine"]
    assert client.post(f"/api/v1/alerts/{mine.pk}/read/").json()["read_at"] is not None
    assert titles(client.get("/api/v1/alerts/", {"mine": 1, "unread": 1})) == []
    assert (
        client.post(f"/api/v1/alerts/{mine.pk}/feedback/", {"useful": False}, format="json").json()["useful"]
        is False
    )
    assert client.post(f"/api/v1/alerts/{foreign.pk}/read/").status_code == 404
    assert (
        client.post(f"/api/v1/alerts/{mine.pk}/feedback/", {"useful": "maybe"}, format="json").status_code
        == 400
    )


def test_only_admins_write_playbooks_and_changes_are_audited(world, api):
    payload = {
        "name": "Key account at risk",
        "trigger": "renewal_within",
        "trigger_params": {"days": 60},
        "cooldown_days": 7,
        "steps": [
            {
                "kind": "task",
                "title_template": "Call {{ account.name }}",
                "due_in_days": 2,
                "assignee_rule": "owner",
            },
            {
                "kind": "alert",
                "title_template": "{{ account.name }} renews soon",
                "recipient_rule": "team_manager",
            },
        ],
    }
    assert api(world.csm_a).post("/api/v1/playbooks/", payload, format="json").status_code == 403
    created = api(world.admin).post("/api/v1/playbooks/", payload, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert [s["kind"] for s in body["steps"]] == ["task", "alert"]

    steps = body["steps"]
    steps[0]["due_in_days"] = 5
    updated = api(world.admin).patch(f"/api/v1/playbooks/{body['id']}/", {"steps": steps[:1]}, format="json")

    assert updated.status_code == 200
    assert [(s["id"], s["due_in_days"]) for s in updated.json()["steps"]] == [(steps[0]["id"], 5)]
    assert AuditEntry.objects.filter(target_type="playbooks.playbook").count() == 2
    listing = api(world.csm_a).get("/api/v1/playbooks/").json()["results"]
    assert listing[0]["stats"] == {
        "fired": 0,
        "tasks": 0,
        "tasks_done": 0,
        "alerts": 0,
        "alerts_useful": 0,
        "alerts_not_useful": 0,
    }


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"trigger": "renewal_within", "trigger_params": {}}, "trigger_params"),
        ({"trigger": "renewal_within", "trigger_params": {"days": "soon"}}, "trigger_params"),
        ({"trigger": "band_entered", "trigger_params": {"band": "purple"}}, "trigger_params"),
        ({"trigger": "renewal_within", "trigger_params": {"days": 5, "bogus": 1}}, "trigger_params"),
        ({"trigger": "teleport", "trigger_params": {}}, "trigger"),
        ({"trigger": "renewal_within", "trigger_params": {"days": 5}, "bands": ["blue"]}, "bands"),
        ({"trigger": "renewal_within", "trigger_params": {"days": 5}, "steps": [{"kind": "task"}]}, "steps"),
        (
            {
                "trigger": "renewal_within",
                "trigger_params": {"days": 5},
                "steps": [
                    {
                        "kind": "alert",
                        "title_template": "x",
                        "recipient_rule": "addresses",
                        "recipient_addresses": "nope",
                    }
                ],
            },
            "steps",
        ),
    ],
)
def test_bad_playbooks_are_400_naming_the_field(world, api, payload, field):
    response = api(world.admin).post("/api/v1/playbooks/", {"name": "Bad", **payload}, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not Playbook.objects.filter(name="Bad").exists()


def test_default_playbooks_exist_and_are_valid(world, api):
    from playbooks.serializers import PlaybookSerializer

    names = set(Playbook.objects.values_list("name", flat=True))
    assert {
        "Welcome and kickoff",
        "Stalled onboarding",
        "At risk",
        "Sharp drop",
        "Renewal prep (120 days)",
        "Renewal prep (60 days)",
        "Detractor follow-up",
        "Gone quiet",
        "Quarterly review",
    } <= names
    for playbook in Playbook.objects.prefetch_related("steps"):
        data = PlaybookSerializer(playbook).data
        serializer = PlaybookSerializer(data={**data, "name": data["name"] + " copy"})
        assert serializer.is_valid(), (playbook.name, serializer.errors)


def test_dry_run_shows_what_would_happen_and_writes_nothing(world, api):
    soon = AccountFactory(
        name="Soon",
        renewal_date=timezone.localdate() + dt.timedelta(days=10),
        owner=world.csm_a,
        team=world.team_a,
    )
    step = TaskStepFactory(
        playbook=PlaybookFactory(trigger_params={"days": 30}), title_template="Prep {{ account.name }}"
    )

    response = api(world.admin).post(f"/api/v1/playbooks/{step.playbook.pk}/dry-run/")

    assert response.status_code == 200
    assert response.json() == [
        {
            "account": soon.pk,
            "name": "Soon",
            "occurrence": response.json()[0]["occurrence"],
            "values": response.json()[0]["values"],
            "would_create": [
                {
                    "kind": "task",
                    "title": "Prep Soon",
                    "assignee": world.csm_a.pk,
                    "due_date": (timezone.now().date() + dt.timedelta(days=3)).isoformat(),
                    "priority": "normal",
                }
            ],
        }
    ]
    assert not Task.objects.exists() and not PlaybookRun.objects.exists()
