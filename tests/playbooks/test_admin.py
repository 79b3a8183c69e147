"""Playbook admin pages render, and the dry-run action reports without writing."""

import datetime as dt

from django.utils import timezone

from playbooks.models import Playbook, PlaybookRun, Task
from tests.factories import AccountFactory


def test_playbook_admin_pages_render(admin_client, db):
    for name in ("playbook", "playbookrun", "task", "alert", "emaildelivery"):
        assert admin_client.get(f"/admin/playbooks/{name}/").status_code == 200
    playbook = Playbook.objects.get(name="At risk")
    page = admin_client.get(f"/admin/playbooks/playbook/{playbook.pk}/change/")
    assert page.status_code == 200
    assert b"Build a save plan" in page.content


def test_dry_run_action_reports_and_writes_nothing(admin_client, db):
    AccountFactory(name="Renews soon", renewal_date=timezone.localdate() + dt.timedelta(days=30))
    playbook = Playbook.objects.get(name="Renewal prep (60 days)")

    response = admin_client.post(
        "/admin/playbooks/playbook/",
        {"action": "show_dry_run", "_selected_action": [playbook.pk]},
        follow=True,
    )

    assert "would fire on 1 account(s): Renews soon" in response.content.decode()
    assert not PlaybookRun.objects.exists() and not Task.objects.exists()
