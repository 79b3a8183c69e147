"""A CSM never sees another team's account, task or alert: not by URL, not by search, not by POST."""

import datetime as dt

import pytest
from django.utils import timezone

from playbooks.models import Alert, Task
from tests.factories import AccountFactory
from web.context_processors import nav_counts

PAGES = ["/", "/tasks/", "/alerts/", "/journeys/", "/renewals/", "/portfolio/"]


def make_task(account, assignee, title="Call them", due=None) -> Task:
    return Task.objects.create(
        account=account, title=title, assignee=assignee, due_date=due or timezone.localdate()
    )


def make_alert(account, recipient, title="Something happened") -> Alert:
    return Alert.objects.create(
        account=account, recipient=recipient, recipient_key=f"user:{recipient.pk}", kind="manual", title=title
    )


@pytest.mark.parametrize("url", [*PAGES, "/accounts/1/"])
def test_every_page_asks_to_log_in(client, db, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login/")


def test_a_foreign_account_is_a_404_on_every_account_url(world, client, account_a, account_b):
    client.force_login(world.csm_a)
    assert client.get(f"/accounts/{account_a.pk}/").status_code == 200
    assert client.get(f"/accounts/{account_b.pk}/").status_code == 404
    for suffix, data in [
        ("milestones/kickoff-call/complete/", {}),
        ("touchpoints/", {"kind": "call", "occurred_at": "2026-01-01T10:00", "summary": "x"}),
        ("tasks/", {"title": "x", "due_date": "2026-12-01", "priority": "normal"}),
        ("override/", {"band": "green", "reason": "x", "expires_on": "2027-01-01"}),
        ("override/lift/", {}),
    ]:
        assert client.post(f"/accounts/{account_b.pk}/{suffix}", data).status_code == 404, suffix
    assert not Task.objects.filter(account=account_b).exists()
    assert not account_b.touchpoints.exists()


def test_search_never_finds_another_teams_account(world, client, account_a, account_b):
    client.force_login(world.csm_a)
    page = client.get("/", {"q": "globex"}).content.decode()
    assert "Globex" not in page
    page = client.get("/", {"q": "acme"}).content.decode()
    assert "Acme" in page


def test_a_manager_sees_their_teams_accounts_only(world, client, account_a, account_b):
    client.force_login(world.manager_a)
    page = client.get("/").content.decode()
    assert "Acme" in page
    assert "Globex" not in page
    assert client.get(f"/accounts/{account_b.pk}/").status_code == 404


def test_tasks_and_alerts_of_another_team_are_neither_listed_nor_changeable(
    world, client, account_a, account_b
):
    mine = make_task(account_a, world.csm_a, "Mine to do")
    theirs = make_task(account_b, world.csm_b, "Theirs to do")
    their_alert = make_alert(account_b, world.csm_b, "Their alert")
    make_alert(account_a, world.csm_a, "My alert")
    client.force_login(world.csm_a)

    for scope in ("mine", "team"):
        tasks = client.get("/tasks/", {"scope": scope}).content.decode()
        alerts = client.get("/alerts/", {"scope": scope}).content.decode()
        assert "Mine to do" in tasks and "Theirs to do" not in tasks
        assert "My alert" in alerts and "Their alert" not in alerts

    assert client.post(f"/tasks/{theirs.pk}/complete/").status_code == 404
    assert client.post(f"/tasks/{theirs.pk}/snooze/", {"days": 7}).status_code == 404
    assert client.post(f"/alerts/{their_alert.pk}/read/").status_code == 404
    assert client.post(f"/alerts/{their_alert.pk}/judge/", {"useful": "yes"}).status_code == 404
    theirs.refresh_from_db()
    their_alert.refresh_from_db()
    assert theirs.status == "open" and their_alert.read_at is None and their_alert.useful is None
    assert mine.status == "open"


def test_my_teams_tasks_include_a_teammates(world, client, account_a):
    other = AccountFactory(name="Teammate's", owner=world.csm_a2, team=world.team_a)
    make_task(other, world.csm_a2, "Teammate task")
    client.force_login(world.csm_a)
    assert "Teammate task" not in client.get("/tasks/").content.decode()
    assert "Teammate task" in client.get("/tasks/", {"scope": "team"}).content.decode()


def test_manager_dashboards_are_for_managers(world, client, account_a, account_b):
    client.force_login(world.csm_a)
    assert client.get("/renewals/").status_code == 403
    assert client.get("/portfolio/").status_code == 403
    assert client.get("/journeys/").status_code == 200
    assert 'href="/renewals/"' not in client.get("/").content.decode()

    client.force_login(world.manager_a)
    page = client.get("/renewals/", {"days": 400}).content.decode()
    assert "Acme" in page and "Globex" not in page
    portfolio = client.get("/portfolio/").content.decode()
    assert "csm_a" in portfolio and "csm_b" not in portfolio


def test_admin_link_only_for_admins(world, client):
    client.force_login(world.csm_a)
    assert 'href="/admin/"' not in client.get("/").content.decode()
    client.force_login(world.admin)
    assert 'href="/admin/"' in client.get("/").content.decode()


def test_top_bar_counts_my_open_tasks_and_unread_alerts(world, client, account_a, django_assert_num_queries):
    make_task(account_a, world.csm_a, "One")
    make_task(account_a, world.csm_a, "Two", due=timezone.localdate() - dt.timedelta(days=3))
    done = make_task(account_a, world.csm_a, "Done")
    Task.objects.filter(pk=done.pk).update(status="done")
    make_alert(account_a, world.csm_a)
    read = make_alert(account_a, world.csm_a, "Already read")
    Alert.objects.filter(pk=read.pk).update(read_at=timezone.now())
    make_alert(account_a, world.csm_a2)
    make_task(account_a, world.csm_a2, "Not mine")
    client.force_login(world.csm_a)
    response = client.get("/journeys/")
    assert response.context["nav_open_tasks"]() == 2
    assert response.context["nav_unread_alerts"]() == 1
    with django_assert_num_queries(1):  # both counts in one query
        assert nav_counts(world.csm_a) == {"open_tasks": 2, "unread_alerts": 1}


def test_out_of_range_ids_are_404s_not_500s(world, client, account_a):
    client.force_login(world.csm_a)
    huge = "9" * 30
    assert client.get(f"/accounts/{huge}/").status_code == 404
    assert client.post(f"/tasks/{huge}/complete/").status_code == 404
    assert client.post(f"/alerts/{huge}/read/").status_code == 404
    assert client.get("/", {"owner": "9" * 20}).status_code == 200


def test_a_teammates_alert_is_listed_but_only_its_recipient_judges_it(world, client, account_a):
    alert = make_alert(account_a, world.manager_a, "For the manager")
    client.force_login(world.csm_a)
    page = client.get("/alerts/", {"scope": "team"}).content.decode()
    assert "For the manager" in page
    assert f"/alerts/{alert.pk}/read/" not in page
    assert client.post(f"/alerts/{alert.pk}/read/").status_code == 404
    assert client.post(f"/alerts/{alert.pk}/judge/", {"useful": "no"}).status_code == 404
    alert.refresh_from_db()
    assert alert.read_at is None and alert.useful is None
