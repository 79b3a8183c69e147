"""An audit trail of who changed a scorecard, playbook, journey, override or owner, through the
API or the admin, visible in the admin (STYLE.md 13)."""

import datetime as dt

import pytest
from django.utils import timezone

from accounts.models import AuditEntry
from health.models import Scorecard
from journeys.models import Journey
from playbooks.models import Playbook
from tests.factories import PlaybookFactory, UserFactory


@pytest.fixture
def staff_admin(world):
    world.admin.is_staff = True
    world.admin.is_superuser = True
    world.admin.save(update_fields=["is_staff", "is_superuser"])
    return world.admin


def entries(action: str, target) -> list[AuditEntry]:
    return list(
        AuditEntry.objects.filter(
            action=action, target_type=target._meta.label_lower, target_id=str(target.pk)
        )
    )


@pytest.mark.django_db
def test_api_changes_are_audited_with_who_and_what(world, api, account_a, staff_admin):
    scorecard = Scorecard.objects.filter(status=Scorecard.Status.ACTIVE).first()
    playbook = PlaybookFactory()
    admin_api = api(staff_admin)

    assert (
        admin_api.patch(f"/api/v1/playbooks/{playbook.pk}/", {"cooldown_days": 9}, format="json").status_code
        == 200
    )
    response = admin_api.patch(f"/api/v1/scorecards/{scorecard.pk}/", {"red_below": 35}, format="json")
    assert response.status_code in (200, 201)
    csm = api(world.csm_a)
    assert (
        csm.patch(f"/api/v1/accounts/{account_a.pk}/", {"owner": world.csm_a2.pk}, format="json").status_code
        == 200
    )
    expires = (timezone.now() + dt.timedelta(days=3)).isoformat()
    override = {"band": "red", "reason": "exec escalation", "expires_at": expires}
    assert (
        csm.post(f"/api/v1/accounts/{account_a.pk}/health/override/", override, format="json").status_code
        == 201
    )

    (playbook_entry,) = entries("playbook.changed", playbook)
    assert playbook_entry.actor == staff_admin and playbook_entry.changes["cooldown_days"] == 9
    assert AuditEntry.objects.filter(action__startswith="scorecard.", actor=staff_admin).exists()
    owner_entries = entries("account.changed", account_a)
    assert owner_entries and owner_entries[0].actor == world.csm_a
    assert "owner" in owner_entries[0].changes
    (override_entry,) = entries("health.override.set", account_a)
    assert override_entry.actor == world.csm_a and override_entry.changes["reason"] == "exec escalation"
    assert all(entry.at is not None for entry in AuditEntry.objects.all())


@pytest.mark.django_db
def test_admin_edits_of_playbooks_and_journeys_are_audited_and_listed(client, staff_admin, account_a, world):
    client.force_login(staff_admin)
    playbook = PlaybookFactory(name="Renewal nudge")
    change = client.get(f"/admin/playbooks/playbook/{playbook.pk}/change/")
    form = change.context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and not isinstance(v, list | dict)}
    data.update(
        {
            "name": "Renewal nudge v2",
            "trigger": playbook.trigger,
            "trigger_params": '{"days": 60}',
            "segments": "[]",
            "stages": "[]",
            "bands": "[]",
            "cooldown_days": 30,
            "steps-TOTAL_FORMS": 0,
            "steps-INITIAL_FORMS": 0,
            "steps-MIN_NUM_FORMS": 0,
            "steps-MAX_NUM_FORMS": 1000,
        }
    )
    response = client.post(f"/admin/playbooks/playbook/{playbook.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    assert Playbook.objects.get(pk=playbook.pk).name == "Renewal nudge v2"
    (entry,) = entries("playbook.changed", playbook)
    assert entry.actor == staff_admin and "name" in entry.changes

    journey = Journey.objects.first()
    journey_entry_count = AuditEntry.objects.filter(target_type="journeys.journey").count()
    client.post(f"/admin/journeys/journey/{journey.pk}/delete/", {"post": "yes"})
    assert AuditEntry.objects.filter(target_type="journeys.journey").count() == journey_entry_count + 1

    listing = client.get("/admin/accounts/auditentry/")
    assert listing.status_code == 200
    body = listing.content.decode()
    assert "playbook.changed" in body and staff_admin.username in body


@pytest.mark.django_db
def test_the_audit_trail_cannot_be_edited_in_the_admin(client, staff_admin):
    client.force_login(staff_admin)
    entry = AuditEntry.objects.create(
        actor=UserFactory(), action="x.changed", target_type="x.y", target_id="1", changes={}
    )
    assert client.post(f"/admin/accounts/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEntry.objects.filter(pk=entry.pk).exists()
