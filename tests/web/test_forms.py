"""The forms of the pages work, and bad input shows an error (400), never a 500."""

import datetime as dt

import pytest
from django.utils import dateformat, timezone

from health.models import Override
from journeys.models import Milestone
from playbooks.models import Alert, Task
from tests.factories import AccountFactory, AlertStepFactory
from tests.web.conftest import give_history


@pytest.fixture
def csm_client(world, client):
    client.force_login(world.csm_a)
    return client


def test_add_a_task_assigns_it_to_me_by_default(world, csm_client, account_a):
    due = timezone.localdate() + dt.timedelta(days=4)
    response = csm_client.post(
        f"/accounts/{account_a.pk}/tasks/",
        {"title": "Plan the QBR", "due_date": due.isoformat(), "priority": "high"},
    )
    assert response.status_code == 302
    task = Task.objects.get(account=account_a)
    assert (task.title, task.assignee, task.due_date, task.priority, task.created_by) == (
        "Plan the QBR",
        world.csm_a,
        due,
        "high",
        world.csm_a,
    )


def test_a_task_for_a_teammate_and_not_for_a_stranger(world, csm_client, account_a):
    due = (timezone.localdate() + dt.timedelta(days=1)).isoformat()
    url = f"/accounts/{account_a.pk}/tasks/"
    assert (
        csm_client.post(
            url, {"title": "x", "due_date": due, "priority": "normal", "assignee": world.csm_a2.pk}
        ).status_code
        == 302
    )
    assert Task.objects.get().assignee == world.csm_a2
    response = csm_client.post(
        url, {"title": "y", "due_date": due, "priority": "normal", "assignee": world.csm_b.pk}
    )
    assert response.status_code == 400
    assert Task.objects.count() == 1


@pytest.mark.parametrize(
    "data",
    [
        {"title": "", "due_date": "2026-12-01", "priority": "normal"},
        {"title": "x", "due_date": "not a date", "priority": "normal"},
        {"title": "x", "due_date": "2026-12-01", "priority": "whenever"},
        {"title": "x" * 400, "due_date": "2026-12-01", "priority": "normal"},
        {"title": "x", "due_date": "99999-01-01", "priority": "normal"},
        {"title": "x", "due_date": "2026-12-01", "priority": "normal", "assignee": "abc"},
        {},
    ],
)
def test_a_bad_task_is_refused_with_the_field_named(csm_client, account_a, data):
    response = csm_client.post(f"/accounts/{account_a.pk}/tasks/", data)
    assert response.status_code == 400
    assert b"has-error" in response.content
    assert not Task.objects.exists()


def test_log_a_touchpoint(world, csm_client, account_a):
    when = timezone.localtime() - dt.timedelta(hours=2)
    response = csm_client.post(
        f"/accounts/{account_a.pk}/touchpoints/",
        {"kind": "meeting", "occurred_at": when.strftime("%Y-%m-%dT%H:%M"), "summary": "QBR went well"},
    )
    assert response.status_code == 302
    touchpoint = account_a.touchpoints.get()
    assert (touchpoint.kind, touchpoint.summary, touchpoint.author) == (
        "meeting",
        "QBR went well",
        world.csm_a,
    )
    assert "QBR went well" in csm_client.get(f"/accounts/{account_a.pk}/").content.decode()


@pytest.mark.parametrize(
    "data",
    [
        {"kind": "call", "occurred_at": "2099-01-01T10:00", "summary": "from the future"},
        {"kind": "carrier pigeon", "occurred_at": "2026-01-01T10:00"},
        {"kind": "call", "occurred_at": "yesterday"},
        {"kind": "call", "occurred_at": "2026-01-01T10:00", "summary": "\x00"},
    ],
)
def test_a_bad_touchpoint_is_refused(csm_client, account_a, data):
    response = csm_client.post(f"/accounts/{account_a.pk}/touchpoints/", data)
    assert response.status_code == 400
    assert not account_a.touchpoints.exists()


def test_override_the_band_then_lift_it(world, csm_client, account_a):
    give_history(account_a, [(1, 1)])
    until = timezone.localdate() + dt.timedelta(days=20)
    response = csm_client.post(
        f"/accounts/{account_a.pk}/override/",
        {"band": "green", "reason": "Signed the renewal", "expires_on": until},
    )
    assert response.status_code == 302
    account_a.refresh_from_db()
    assert account_a.health_band == "green"
    page = csm_client.get(f"/accounts/{account_a.pk}/").content.decode()
    assert "Band overridden to Green" in page and "Signed the renewal" in page
    since = dateformat.format(timezone.localtime(account_a.health_band_since), "M j")
    assert f"since {since}</span>" in page  # entered green now, by the override

    assert csm_client.post(f"/accounts/{account_a.pk}/override/lift/").status_code == 302
    account_a.refresh_from_db()
    assert account_a.health_band == "red"
    assert Override.objects.get().lifted_by == world.csm_a


@pytest.mark.parametrize(
    "data",
    [
        {"band": "green", "reason": "", "expires_on": "2027-01-01"},
        {"band": "purple", "reason": "x", "expires_on": "2027-01-01"},
        {"band": "green", "reason": "x", "expires_on": "2020-01-01"},
        {"band": "green", "reason": "x", "expires_on": "2099-01-01"},
        {"band": "green", "reason": "   ", "expires_on": "2027-01-01"},
    ],
)
def test_a_bad_override_is_refused(csm_client, account_a, data):
    response = csm_client.post(f"/accounts/{account_a.pk}/override/", data)
    assert response.status_code == 400
    assert b"has-error" in response.content
    assert not Override.objects.exists()


def test_complete_a_manual_milestone_in_place(world, csm_client, place_on_journeys):
    today = timezone.localdate()
    account_a = AccountFactory(
        owner=world.csm_a,
        team=world.team_a,
        contract_start=today - dt.timedelta(days=2),
        renewal_date=today + dt.timedelta(days=365),
    )
    place_on_journeys()
    milestone = (
        Milestone.objects.filter(account=account_a, definition__completion="manual")
        .exclude(status="skipped")
        .first()
    )
    key = milestone.definition.key
    response = csm_client.post(f"/accounts/{account_a.pk}/milestones/{key}/complete/")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("#journey")
    milestone.refresh_from_db()
    assert (milestone.status, milestone.completed_by) == ("done", world.csm_a)
    # Again: idempotent; an unknown key is a message, not an error page.
    assert csm_client.post(f"/accounts/{account_a.pk}/milestones/{key}/complete/").status_code == 302
    response = csm_client.post(f"/accounts/{account_a.pk}/milestones/no-such-thing/complete/", follow=True)
    assert response.status_code == 200
    assert "no-such-thing" in response.content.decode()


def test_milestone_on_an_account_not_placed_yet_is_a_message(csm_client, account_a):
    response = csm_client.post(f"/accounts/{account_a.pk}/milestones/kickoff-call/complete/", follow=True)
    assert response.status_code == 200
    assert "not on a journey yet" in response.content.decode()


def test_only_post_changes_things(csm_client, account_a):
    assert csm_client.get(f"/accounts/{account_a.pk}/tasks/").status_code == 405


def test_complete_and_snooze_a_task_in_the_inbox(world, csm_client, account_a):
    today = timezone.localdate()
    task = Task.objects.create(account=account_a, title="Call", assignee=world.csm_a, due_date=today)
    response = csm_client.post(f"/tasks/{task.pk}/snooze/", {"days": 7, "next": "/tasks/?scope=mine"})
    assert response.status_code == 302 and response.headers["Location"] == "/tasks/?scope=mine"
    task.refresh_from_db()
    assert task.due_date == today + dt.timedelta(days=7)
    assert csm_client.post(f"/tasks/{task.pk}/snooze/", {"days": "forever"}).status_code == 302
    task.refresh_from_db()
    assert task.due_date == today + dt.timedelta(days=7)
    # An outside "next" is ignored.
    response = csm_client.post(f"/tasks/{task.pk}/complete/", {"next": "https://evil.example/"})
    assert response.headers["Location"] == "/tasks/"
    task.refresh_from_db()
    assert task.status == "done" and task.completed_at is not None


def test_overdue_tasks_come_first(world, csm_client, account_a):
    today = timezone.localdate()
    Task.objects.create(
        account=account_a, title="Later", assignee=world.csm_a, due_date=today + dt.timedelta(days=9)
    )
    Task.objects.create(
        account=account_a, title="Late", assignee=world.csm_a, due_date=today - dt.timedelta(days=4)
    )
    page = csm_client.get("/tasks/").content.decode()
    assert page.index("Late") < page.index("Later")
    assert "overdue since" in page


def test_mark_alerts_read_and_useful(world, csm_client, account_a):
    alert = Alert.objects.create(
        account=account_a,
        recipient=world.csm_a,
        recipient_key=f"user:{world.csm_a.pk}",
        kind="x",
        title="Look",
    )
    assert csm_client.post(f"/alerts/{alert.pk}/read/").status_code == 302
    alert.refresh_from_db()
    assert alert.read_at is not None
    assert csm_client.post(f"/alerts/{alert.pk}/judge/", {"useful": "maybe"}).status_code == 302
    alert.refresh_from_db()
    assert alert.useful is None
    csm_client.post(f"/alerts/{alert.pk}/judge/", {"useful": "no"})
    alert.refresh_from_db()
    assert alert.useful is False
    assert "Look" not in csm_client.get("/alerts/").content.decode()
    assert "Look" in csm_client.get("/alerts/", {"show": "all"}).content.decode()


def test_the_account_page_explains_a_drop_biggest_loss_first(world, csm_client, account_a):
    give_history(account_a, [(3, 9), (1, 2)])
    response = csm_client.get(f"/accounts/{account_a.pk}/")
    changes = response.context["changes"]
    assert [c["label"] for c in changes] == ["Logins (7 days)"]
    assert changes[0]["points_delta"] == -70
    assert response.context["score_delta"] == -46.6
    page = response.content.decode()
    assert "9 → 2" in page and "\u221270 pts" in page


def test_an_alert_raised_for_several_people_shows_once_on_the_account_page(world, csm_client, account_a):
    step = AlertStepFactory()
    run = step.playbook.runs.create(account=account_a, trigger_key="k", fired_at=timezone.now())
    for user in (world.csm_a, world.manager_a):
        Alert.objects.create(
            account=account_a,
            recipient=user,
            recipient_key=f"user:{user.pk}",
            kind="x",
            title="At risk",
            run=run,
            step=step,
        )
    response = csm_client.get(f"/accounts/{account_a.pk}/")
    (alert,) = response.context["alerts"]
    assert sorted(alert.recipients) == ["csm_a", "manager_a"]
    assert [i["title"] for i in response.context["timeline"]].count("Alert: At risk") == 1
