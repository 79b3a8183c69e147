"""The Django admin of the accounts app: every page renders, account edits are audited, and the
event list stays cheap however many events there are."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from accounts.admin import LargeTablePaginator
from accounts.models import (
    Account,
    AuditEntry,
    Contact,
    Event,
    EventDaily,
    SurveyResponse,
    Team,
    Ticket,
    Touchpoint,
)
from tests.factories import AccountFactory, ContactFactory, TeamFactory, UserFactory

NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)

WRITABLE = (Team, Account, Contact, Ticket, SurveyResponse, Touchpoint)
READ_ONLY = (Event, EventDaily, AuditEntry)


def admin_url(model, name: str, *args) -> str:
    return reverse(f"admin:accounts_{model._meta.model_name}_{name}", args=args)


def make_events(account: Account, contact: Contact | None, n: int) -> None:
    Event.objects.bulk_create(
        Event(
            account=account,
            contact=contact,
            name="login" if i % 2 else "report.viewed",
            occurred_at=NOW - dt.timedelta(minutes=i),
            value=Decimal(i),
        )
        for i in range(n)
    )


@pytest.fixture
def csm(db):
    return UserFactory(username="csm_admin_test", role="csm")


@pytest.fixture
def account(csm) -> Account:
    team = TeamFactory(name="Team Admin")
    team.members.add(csm)
    account = AccountFactory(external_id="acme", name="Acme", owner=csm, team=team)
    contact = ContactFactory(account=account, name="Ada", is_champion=True)
    make_events(account, contact, 3)
    EventDaily.objects.create(account=account, name="login", day=NOW.date(), count=3, value_sum=3)
    Ticket.objects.create(account=account, external_id="T-1", subject="Broken export", opened_at=NOW)
    SurveyResponse.objects.create(account=account, contact=contact, kind="nps", score=9, responded_at=NOW)
    Touchpoint.objects.create(account=account, author=csm, kind="call", occurred_at=NOW, summary="QBR")
    AuditEntry.objects.create(
        actor=csm, action="account.changed", target_type="accounts.account", target_id=str(account.pk)
    )
    return account


def form_data(response) -> dict:
    """What the browser would post back from a change page, before the user touches it."""
    data = {}
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        management = formset.management_form
        data.update({management[name].html_name: management[name].value() for name in management.fields})
        forms += formset.forms
    for form in forms:
        for name, field in form.fields.items():
            value = form[name].value()
            html_name = form[name].html_name
            if isinstance(value, bool):
                if value:
                    data[html_name] = "on"
            elif isinstance(value, list | tuple):
                data[html_name] = [str(v) for v in value]
            elif hasattr(field, "widget") and type(field.widget).__name__ == "SplitDateTimeWidget":
                data[f"{html_name}_0"] = value.date().isoformat() if value else ""
                data[f"{html_name}_1"] = value.time().isoformat() if value else ""
            else:
                data[html_name] = "" if value is None else str(value)
    return data


@pytest.mark.parametrize("model", WRITABLE + READ_ONLY, ids=lambda m: m.__name__)
def test_changelist_renders_with_rows(admin_client, account, model):
    response = admin_client.get(admin_url(model, "changelist"))

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) >= 1


@pytest.mark.parametrize("model", WRITABLE, ids=lambda m: m.__name__)
def test_add_page_renders(admin_client, account, model):
    assert admin_client.get(admin_url(model, "add")).status_code == 200


@pytest.mark.parametrize("model", READ_ONLY, ids=lambda m: m.__name__)
def test_read_only_tables_refuse_adds_but_show_their_rows(admin_client, account, model):
    row = model.objects.first()

    assert admin_client.get(admin_url(model, "add")).status_code == 403
    response = admin_client.get(admin_url(model, "change", row.pk))
    assert response.status_code == 200
    assert not response.context["has_change_permission"]
    assert not response.context["has_delete_permission"]


def test_account_change_page_shows_contacts_touchpoints_and_tickets(admin_client, account):
    response = admin_client.get(admin_url(Account, "change", account.pk))

    assert response.status_code == 200
    content = response.content.decode()
    assert "Ada" in content
    assert "QBR" in content
    assert "Broken export" in content


def test_account_inlines_are_bounded(admin_client, account):
    Touchpoint.objects.bulk_create(
        Touchpoint(account=account, kind="note", occurred_at=NOW - dt.timedelta(days=i)) for i in range(30)
    )

    response = admin_client.get(admin_url(Account, "change", account.pk))

    touchpoints = next(
        inline for inline in response.context["inline_admin_formsets"] if inline.opts.model is Touchpoint
    )
    assert len(touchpoints.formset.forms) == 10


def test_changing_the_owner_in_the_admin_audits_it(admin_client, admin_user, account, csm):
    new_owner = UserFactory(username="new_owner", role="csm")
    page = admin_client.get(admin_url(Account, "change", account.pk))
    data = form_data(page)
    data["owner"] = str(new_owner.pk)

    response = admin_client.post(admin_url(Account, "change", account.pk), data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    account.refresh_from_db()
    assert account.owner == new_owner
    entry = AuditEntry.objects.get(action="account.changed", target_id=str(account.pk), actor=admin_user)
    assert entry.changes == {"owner": [csm.pk, new_owner.pk]}
    # The untouched contact inline is still there, unchanged.
    assert account.contacts.get().name == "Ada"


def test_churning_in_the_admin_dates_the_churn(admin_client, admin_user, account):
    page = admin_client.get(admin_url(Account, "change", account.pk))
    data = form_data(page)
    data["status"] = Account.Status.CHURNED

    admin_client.post(admin_url(Account, "change", account.pk), data)

    account.refresh_from_db()
    assert account.status == Account.Status.CHURNED
    assert account.churned_at == timezone.now().date()
    entry = AuditEntry.objects.get(action="account.changed", target_id=str(account.pk), actor=admin_user)
    assert entry.changes == {"status": ["active", "churned"]}


def test_adding_an_account_in_the_admin_audits_it(admin_client, admin_user, csm):
    data = {
        "name": "Initech",
        "external_id": "initech",
        "owner": str(csm.pk),
        "segment": "enterprise",
        "arr": "50000",
        "currency": "USD",
        "status": "active",
        "contacts-TOTAL_FORMS": "1",
        "contacts-INITIAL_FORMS": "0",
        "contacts-0-name": "Peter",
        "contacts-0-email": "peter@initech.example",
        **{
            f"{prefix}-{key}": "0"
            for prefix in ("touchpoints", "tickets")
            for key in ("TOTAL_FORMS", "INITIAL_FORMS")
        },
    }

    response = admin_client.post(admin_url(Account, "add"), data)

    assert response.status_code == 302
    account = Account.objects.get(external_id="initech")
    assert account.owner == csm
    assert account.contacts.get().name == "Peter"
    entry = AuditEntry.objects.get(action="account.created", target_id=str(account.pk))
    assert entry.actor == admin_user
    assert entry.changes["owner"] == csm.pk


def test_deleting_an_account_counts_its_events_and_audits_the_deletion(admin_client, account):
    url = admin_url(Account, "delete", account.pk)

    page = admin_client.get(url)
    assert page.status_code == 200
    assert not page.context["perms_lacking"]
    assert dict(page.context["model_count"])["events"] == 3

    response = admin_client.post(url, {"post": "yes"})

    assert response.status_code == 302
    assert not Account.objects.filter(pk=account.pk).exists()
    assert AuditEntry.objects.filter(action="account.deleted", target_id=str(account.pk)).exists()


def test_changing_team_members_in_the_admin_audits_it(admin_client, account, csm):
    team = account.team
    newcomer = UserFactory(username="newcomer", role="csm")
    data = {"name": team.name, "manager": "", "members": [str(csm.pk), str(newcomer.pk)]}

    response = admin_client.post(admin_url(Team, "change", team.pk), data)

    assert response.status_code == 302
    assert set(team.members.all()) == {csm, newcomer}
    entry = AuditEntry.objects.get(action="team.changed", target_id=str(team.pk))
    assert entry.changes == {"members": {"added": [newcomer.pk], "removed": []}}


@pytest.mark.parametrize("n_events", [5, 50])
def test_event_changelist_queries_do_not_grow_with_events(
    admin_client, account, n_events, django_assert_max_num_queries
):
    Event.objects.all().delete()
    other = AccountFactory()
    make_events(account, account.contacts.get(), n_events)
    make_events(other, None, n_events)

    with django_assert_max_num_queries(6):
        response = admin_client.get(admin_url(Event, "changelist"))

    assert len(response.context["cl"].result_list) == 2 * n_events


def test_event_changelist_filters_by_account(admin_client, account):
    other = AccountFactory()
    make_events(other, None, 4)

    response = admin_client.get(admin_url(Event, "changelist"), {"account__id__exact": other.pk})

    assert response.status_code == 200
    assert {event.account_id for event in response.context["cl"].result_list} == {other.pk}
    assert response.context["cl"].result_count == 4


def test_saving_an_account_with_more_contacts_than_shown_keeps_them_all(admin_client, account):
    ContactFactory.create_batch(30, account=account)
    page = admin_client.get(admin_url(Account, "change", account.pk))
    data = form_data(page)
    data["name"] = "Acme Corp"

    response = admin_client.post(admin_url(Account, "change", account.pk), data)

    assert response.status_code == 302
    account.refresh_from_db()
    assert account.name == "Acme Corp"
    assert account.contacts.count() == 31


def test_unfiltered_event_list_takes_the_planner_estimate_instead_of_counting(
    admin_client, account, monkeypatch, django_assert_max_num_queries
):
    make_events(account, None, 50)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE accounts_event")
    monkeypatch.setattr(LargeTablePaginator, "count_cap", 20)

    with django_assert_max_num_queries(6) as captured:
        unfiltered = admin_client.get(admin_url(Event, "changelist"))
    filtered = admin_client.get(admin_url(Event, "changelist"), {"account__id__exact": account.pk})

    assert not any("COUNT(" in query["sql"] for query in captured.captured_queries)
    assert unfiltered.context["cl"].result_count == 53
    assert filtered.context["cl"].result_count == 20
