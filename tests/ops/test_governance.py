"""Data requests: export an account or contact, erase a contact, prune raw events — each audited."""

import datetime as dt
import io
import json

import pytest
from django.core.management import CommandError, call_command

from accounts.governance import erase_contact, prune_events
from accounts.models import AuditEntry, Contact, Event, EventDaily, SurveyResponse
from tests.factories import AccountFactory

NOW = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def account_with_a_person(world):
    account = AccountFactory(owner=world.csm_a, team=world.team_a)
    ann = Contact.objects.create(account=account, name="Ann Smith", email="ann@acme.test", title="CTO")
    for days in (1, 2, 400):
        Event.objects.create(
            account=account,
            contact=ann,
            name="login",
            occurred_at=NOW - dt.timedelta(days=days),
            properties={"ip": "10.0.0.1"},
        )
    EventDaily.objects.create(account=account, name="login", day=dt.date(2025, 10, 19), count=1)
    SurveyResponse.objects.create(
        account=account, contact=ann, kind="nps", score=3, comment="Ann here: too slow", responded_at=NOW
    )
    return account, ann


def test_export_account_has_everything_about_it_and_is_audited(account_with_a_person):
    account, _ = account_with_a_person
    out = io.StringIO()

    call_command("export_account", str(account.pk), stdout=out)

    data = json.loads(out.getvalue())
    assert data["subject"] == "accounts.account" and data["id"] == account.pk
    assert data["row"]["name"] == account.name
    assert [c["email"] for c in data["related"]["accounts.contact"]] == ["ann@acme.test"]
    assert len(data["related"]["accounts.event"]) == 3  # reached by account and by contact, listed once
    assert data["related"]["accounts.surveyresponse"][0]["comment"] == "Ann here: too slow"
    assert "accounts.eventdaily" in data["related"]
    audit = AuditEntry.objects.get(action="account.export")
    assert audit.target_id == str(account.pk)
    assert audit.changes["tables"]["accounts.event"] == 3


def test_export_a_contact(account_with_a_person):
    _, ann = account_with_a_person
    out = io.StringIO()

    call_command("export_account", str(ann.pk), "--contact", stdout=out)

    data = json.loads(out.getvalue())
    assert data["row"]["email"] == "ann@acme.test"
    assert len(data["related"]["accounts.event"]) == 3
    assert AuditEntry.objects.filter(action="contact.export", target_id=str(ann.pk)).exists()


def test_erasing_a_contact_keeps_the_aggregates_and_leaves_no_personal_data(account_with_a_person, world):
    account, ann = account_with_a_person

    erasure = erase_contact(contact=ann, actor=world.admin)

    assert not Contact.objects.filter(pk=ann.pk).exists()
    assert erasure.events_unlinked == 3 and erasure.surveys_unlinked == 1
    assert Event.objects.filter(account=account).count() == 3
    assert not Event.objects.filter(account=account).exclude(properties={}).exists()
    survey = SurveyResponse.objects.get(account=account)
    assert (survey.score, survey.comment, survey.contact_id) == (3, "", None)
    assert EventDaily.objects.filter(account=account).count() == 1
    audit = AuditEntry.objects.get(action="contact.erase")
    assert audit.actor == world.admin
    assert audit.changes == {"account_id": account.pk, "events_unlinked": 3, "surveys_unlinked": 1}
    assert "ann" not in json.dumps(audit.changes).lower()


def test_erase_contact_command(account_with_a_person):
    _, ann = account_with_a_person
    call_command("erase_contact", str(ann.pk), stdout=io.StringIO())
    assert not Contact.objects.filter(pk=ann.pk).exists()
    with pytest.raises(CommandError):
        call_command("erase_contact", str(ann.pk), stdout=io.StringIO())


def test_the_admin_action_erases_and_audits_with_the_admin(client, account_with_a_person, world):
    _, ann = account_with_a_person
    client.force_login(world.admin)
    world.admin.is_staff = True
    world.admin.is_superuser = True
    world.admin.save(update_fields=["is_staff", "is_superuser"])

    response = client.post(
        "/admin/accounts/contact/", {"action": "erase_personal_data", "_selected_action": [ann.pk]}
    )

    assert response.status_code == 302
    assert not Contact.objects.filter(pk=ann.pk).exists()
    assert AuditEntry.objects.get(action="contact.erase").actor == world.admin


def test_pruning_deletes_old_raw_events_keeps_rollups_and_is_audited(account_with_a_person):
    account, _ = account_with_a_person

    deleted = prune_events(older_than_days=365, now=NOW, batch_size=1)

    assert deleted == 1
    assert Event.objects.filter(account=account).count() == 2
    assert EventDaily.objects.filter(account=account).count() == 1
    audit = AuditEntry.objects.get(action="events.prune")
    assert audit.changes["deleted"] == 1 and audit.changes["older_than_days"] == 365


def test_prune_events_command_refuses_a_too_short_retention(db):
    with pytest.raises(CommandError, match="at least 30 days"):
        call_command("prune_events", "--older-than-days", "7", stdout=io.StringIO())
    call_command("prune_events", "--older-than-days", "400", stdout=io.StringIO())
    assert AuditEntry.objects.filter(action="events.prune").count() == 1


def test_admins_download_an_export_from_the_admin_action_and_others_cannot(
    client, account_with_a_person, world
):
    account, ann = account_with_a_person
    world.admin.is_staff = world.admin.is_superuser = True
    world.admin.save(update_fields=["is_staff", "is_superuser"])
    client.force_login(world.admin)

    action = client.post(
        "/admin/accounts/account/", {"action": "export_as_json", "_selected_action": [account.pk]}
    )
    assert action.status_code == 302
    download = client.get(action["Location"])

    assert download.status_code == 200
    assert download["Content-Disposition"] == f'attachment; filename="lifeline-account-{account.pk}.json"'
    assert json.loads(download.content)["id"] == account.pk
    assert AuditEntry.objects.get(action="account.export").actor == world.admin
    assert client.get(f"/ops/export/contact/{ann.pk}/").status_code == 200

    client.force_login(world.manager_a)
    assert client.get(f"/ops/export/account/{account.pk}/").status_code == 403


def test_the_nightly_retention_task_follows_the_setting(account_with_a_person, settings):
    from accounts.tasks import prune_events_task

    settings.LIFELINE_EVENT_RETENTION_DAYS = 0
    assert prune_events_task() == 0
    assert not AuditEntry.objects.filter(action="events.prune").exists()

    settings.LIFELINE_EVENT_RETENTION_DAYS = 365
    assert prune_events_task() == 1  # the event of 400 days ago
    assert AuditEntry.objects.get(action="events.prune").changes["older_than_days"] == 365
