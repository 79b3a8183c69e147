"""The recompute as a Celery task and a command, freshness, and the admin pages."""

import datetime as dt
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command

from health.explanations import explain_health
from health.models import HealthScore
from health.scoring import recompute_health
from health.tasks import recompute_health_task
from tests.factories import AccountFactory
from tests.health.conftest import T, events

pytestmark = pytest.mark.django_db


def test_the_task_and_the_command_recompute_every_active_account(linear_logins):
    AccountFactory.create_batch(3)
    with time_machine.travel(T, tick=False):
        assert recompute_health_task() == 3
    out = StringIO()
    with time_machine.travel(T + dt.timedelta(hours=1), tick=False):
        call_command("recompute_health", stdout=out)
    assert "Scored 3 accounts." in out.getvalue() and "red" in out.getvalue()
    assert HealthScore.objects.count() == 6


def test_a_score_resting_on_old_inputs_is_flagged_stale(linear_logins):
    fresh, old = AccountFactory(), AccountFactory()
    events(fresh, ("login", "2026-03-09 10:00", None, None))
    events(old, ("login", "2026-02-01 10:00", None, None))  # a 7-day count, but nothing for weeks
    recompute_health(now=T)
    assert explain_health(account=fresh, now=T)["stale"] is False
    assert explain_health(account=old, now=T)["stale"] is True
    # A score not recomputed for longer than the limit is stale too.
    assert explain_health(account=fresh, now=T + dt.timedelta(days=15))["stale"] is True


def test_admin_lists_scorecards_and_edits_only_drafts(client, admin_user, linear_logins):
    client.force_login(admin_user)
    assert client.get("/admin/health/scorecard/").status_code == 200
    page = client.get(f"/admin/health/scorecard/{linear_logins.pk}/change/")
    assert page.status_code == 200 and b"Save" not in page.content  # active: read-only
    recompute_health(now=T)
    assert client.get("/admin/health/healthscore/").status_code == 200
