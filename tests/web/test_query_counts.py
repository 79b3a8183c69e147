"""Every page reads a fixed number of queries, whatever the number of rows: pinned at two sizes."""

import datetime as dt

import pytest
from django.utils import timezone

from accounts.ingestion import ingest_events, record_surveys, upsert_tickets
from accounts.models import Account, Touchpoint
from playbooks.models import Alert, Task
from tests.factories import AccountFactory
from tests.web.conftest import give_history

# Queries per page: session, user, roles and the top-bar counts (one query), plus what the page reads.
LIMITS = {
    "/": 9,
    "/tasks/": 6,
    "/tasks/?scope=team&status=done": 6,
    "/alerts/": 6,
    "/alerts/?scope=team&show=all": 6,
    "/journeys/": 10,
    "/renewals/?days=180": 7,  # the sums, a page of accounts, the learned renewal rates
    "/portfolio/": 7,
    "ACCOUNT": 15,  # issue 7: at most 15 a page
}


def grow(world, size: int, place_on_journeys) -> Account:
    """``size`` accounts in team A with history, tasks, alerts; the first one gets ``size`` of everything."""
    now = timezone.now()
    today = timezone.localdate()
    accounts = [
        AccountFactory(
            owner=world.csm_a if i % 2 else world.csm_a2,
            team=world.team_a,
            renewal_date=today + dt.timedelta(days=10 + i),
        )
        for i in range(size)
    ]
    for i, account in enumerate(accounts):
        give_history(account, [(d, (i + d) % 11) for d in range(1, 90, 10)], now=now)
        Task.objects.create(
            account=account,
            title=f"Task {i}",
            assignee=world.csm_a,
            due_date=today - dt.timedelta(days=i % 3),
        )
        Task.objects.create(
            account=account,
            title=f"Done {i}",
            assignee=world.csm_a,
            due_date=today,
            status="done",
            completed_at=now,
        )
        Alert.objects.create(
            account=account,
            recipient=world.csm_a,
            recipient_key=f"user:{world.csm_a.pk}",
            kind="x",
            title=f"Alert {i}",
        )
    first = accounts[0]
    ingest_events(
        raw_rows=[
            {
                "account": first.external_id,
                "name": f"event{j % 4}",
                "occurred_at": (now - dt.timedelta(days=j, hours=1)).isoformat(),
                "contact": f"p{j}@x.example",
            }
            for j in range(size)
        ],
        accounts=Account.objects.all(),
        now=now,
    )
    upsert_tickets(
        raw_rows=[
            {
                "account": first.external_id,
                "external_id": f"{size}-{j}",
                "subject": "s",
                "priority": "high",
                "status": "open",
                "opened_at": (now - dt.timedelta(days=j)).isoformat(),
            }
            for j in range(size)
        ],
        accounts=Account.objects.all(),
        now=now,
    )
    record_surveys(
        raw_rows=[
            {
                "account": first.external_id,
                "kind": "nps",
                "score": j % 11,
                "responded_at": (now - dt.timedelta(days=j)).isoformat(),
            }
            for j in range(size)
        ],
        accounts=Account.objects.all(),
        now=now,
    )
    Touchpoint.objects.bulk_create(
        Touchpoint(account=first, author=world.csm_a, kind="call", occurred_at=now - dt.timedelta(days=j))
        for j in range(size)
    )
    place_on_journeys(now)
    return first


@pytest.mark.parametrize("size", [3, 40])
def test_pages_cost_the_same_for_few_and_many_rows(
    world, client, size, place_on_journeys, django_assert_max_num_queries
):
    first = grow(world, size, place_on_journeys)
    for user in (world.csm_a, world.manager_a):
        client.force_login(user)
        for url, limit in LIMITS.items():
            if user == world.csm_a and url.startswith(("/renewals/", "/portfolio/")):
                continue
            target = f"/accounts/{first.pk}/" if url == "ACCOUNT" else url
            with django_assert_max_num_queries(limit):
                response = client.get(target)
            assert response.status_code == 200, target


def test_the_account_page_lists_a_bounded_number_of_rows(world, client, place_on_journeys):
    first = grow(world, 40, place_on_journeys)
    client.force_login(world.csm_a)
    response = client.get(f"/accounts/{first.pk}/")
    assert len(response.context["timeline"]) <= 40
    assert len(response.context["tasks"]) <= 20
