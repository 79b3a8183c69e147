"""The admin pages render and audit configuration; the task and command run the step."""

import threading

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from accounts.locking import step_lock
from accounts.models import AuditEntry
from journeys.evaluation import STEP_LOCK
from journeys.models import AccountJourney, Journey, Milestone, MilestoneDefinition, Stage, StageChange
from journeys.tasks import evaluate_journeys_task
from tests.factories import AccountFactory

MODELS = (Journey, Stage, MilestoneDefinition, AccountJourney, StageChange, Milestone)


def admin_url(model, name: str, *args) -> str:
    return reverse(f"admin:journeys_{model._meta.model_name}_{name}", args=args)


@pytest.fixture
def admin_client_(client, world):
    client.force_login(world.admin)
    world.admin.is_staff = True
    world.admin.is_superuser = True
    world.admin.save(update_fields=["is_staff", "is_superuser"])
    return client


def test_every_journeys_admin_page_renders(admin_client_, default_journey):
    AccountFactory(contract_start=None, renewal_date=None)
    call_command("evaluate_journeys")
    for model in MODELS:
        assert admin_client_.get(admin_url(model, "changelist")).status_code == 200, model
        obj = model.objects.first()
        assert admin_client_.get(admin_url(model, "change", obj.pk)).status_code == 200, model
    stage = Stage.objects.get(journey=default_journey, key="onboarding")
    page = admin_client_.get(admin_url(Journey, "change", default_journey.pk)).content.decode()
    assert "Onboarding" in page and admin_url(Stage, "change", stage.pk) in page
    assert "Kickoff call" in admin_client_.get(admin_url(Stage, "change", stage.pk)).content.decode()


def test_changing_a_stage_in_the_admin_is_audited(admin_client_, default_journey):
    stage = Stage.objects.get(journey=default_journey, key="renewal")
    response = admin_client_.post(
        admin_url(Stage, "change", stage.pk),
        {
            "journey": default_journey.pk,
            "key": "renewal",
            "name": "Renewal",
            "order": stage.order,
            "entered_by": "before_renewal",
            "days_before_renewal": 90,
            "expected_days": stage.expected_days,
            "renewed_returns_to": stage.renewed_returns_to_id,
            "milestones-TOTAL_FORMS": 0,
            "milestones-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    stage.refresh_from_db()
    assert stage.days_before_renewal == 90
    entry = AuditEntry.objects.get(action="stage.changed")
    assert entry.changes == {"days_before_renewal": "90"}


def test_the_command_evaluates_and_reports(default_journey, capsys):
    account = AccountFactory(contract_start=None, renewal_date=None)
    call_command("evaluate_journeys")
    assert "1 stage changes" in capsys.readouterr().out
    account.refresh_from_db()
    assert account.stage == "onboarding"
    call_command("evaluate_journeys")
    assert "0 stage changes" in capsys.readouterr().out


def test_the_task_returns_counts(default_journey):
    AccountFactory(contract_start=None, renewal_date=None)
    assert evaluate_journeys_task.apply().get()["stages_entered"] == 1
    assert evaluate_journeys_task.apply().get() == {
        "stages_entered": 0,
        "milestones_completed": 0,
        "milestones_overdue": 0,
    }


@pytest.mark.django_db(transaction=True)
def test_the_task_skips_while_another_run_holds_the_step_lock():
    AccountFactory(contract_start=None, renewal_date=None)
    result = {}

    def run():
        try:
            result["value"] = evaluate_journeys_task.apply().get()
        finally:
            connection.close()

    with step_lock(STEP_LOCK) as acquired:
        assert acquired
        thread = threading.Thread(target=run)
        thread.start()
        thread.join(timeout=30)
    assert result["value"] is None
    assert not AccountJourney.objects.exists()
