"""The web UI in a real browser (Debian's Chromium, headless, through Playwright).

A CSM logs in, opens an at-risk account from My book, reads why its score dropped, completes a
milestone and adds a task; a manager opens the renewals dashboard. The story behind it is made
by the real steps (ingestion, journeys evaluation, health recompute) over 84 days. Screenshots
land in var/screenshots/ (gitignored) to be looked at.
"""

import contextlib
import datetime as dt
import importlib
import os
import shutil
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from django.apps import apps
from django.utils import timezone

from accounts.ingestion import ingest_events, record_surveys, upsert_tickets
from accounts.models import Account
from health.scoring import recompute_health
from journeys.evaluation import evaluate_journeys
from playbooks import work
from playbooks.models import Alert, Task
from tests.factories import AccountFactory, TeamFactory, UserFactory

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "var" / "screenshots"
CHROMIUM = os.environ.get("LIFELINE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _run_migration_data(module: str, function: str) -> None:
    """Transactional tests flush what migrations stored: put the defaults back the same way."""
    getattr(importlib.import_module(module), function)(apps, None)


def _logins(
    account: Account, contacts: list[str], days: range, now: dt.datetime, every: int = 1
) -> list[dict]:
    rows = []
    for day in days:
        if day % every:
            continue
        for i, contact in enumerate(contacts):
            at = now - dt.timedelta(days=day, hours=3 + i)
            rows.append(
                {
                    "account": account.external_id,
                    "name": "login",
                    "occurred_at": at.isoformat(),
                    "contact": contact,
                }
            )
            if day % 4 == i:
                rows.append(
                    {
                        "account": account.external_id,
                        "name": "report_viewed",
                        "occurred_at": at.isoformat(),
                        "contact": contact,
                    }
                )
    return rows


def build_story(now: dt.datetime) -> dict:
    """Two teams; team A's CSM has a book where Acme Rockets slid from green into red lately."""
    csm = UserFactory(username="casey", first_name="Casey", last_name="Moreau", role="csm", password="pw")
    csm2 = UserFactory(username="sam", first_name="Sam", last_name="Okafor", role="csm", password="pw")
    manager = UserFactory(
        username="morgan", first_name="Morgan", last_name="Lee", role="manager", password="pw"
    )
    other = UserFactory(username="riley", role="csm", password="pw")
    north = TeamFactory(name="North", manager=manager)
    north.members.add(csm, csm2)
    south = TeamFactory(name="South")
    south.members.add(other)

    _run_migration_data("journeys.migrations.0002_default_journeys", "create_journeys")
    _run_migration_data("health.migrations.0002_default_scorecard", "create_default")

    today = now.date()
    start = today - dt.timedelta(days=84)
    specs = [
        # name, owner, segment, arr, renewal in days, (active from day, to day), contacts
        ("Acme Rockets", csm, "enterprise", "184000", 75, (84, 22), 3),
        ("Globex", csm, "mid-market", "96000", 40, (84, 0), 3),
        ("Hooli", csm, "enterprise", "240000", 150, (84, 0), 4),
        ("Initrode", csm, "smb", "18000", 25, (84, 40), 1),
        ("Pied Piper", csm, "smb", "24000", 200, (84, 0), 2),
        ("Soylent", csm2, "mid-market", "72000", 55, (84, 10), 2),
        ("Umbrella", csm2, "enterprise", "310000", 120, (84, 0), 3),
        ("Vandelay", csm2, "smb", "12000", 85, (60, 0), 1),
    ]
    accounts = {}
    events = []
    for name, owner, segment, arr, renewal_in, (active_from, active_to), people in specs:
        account = AccountFactory(
            name=name,
            external_id=name.lower().replace(" ", "-"),
            domain=name.lower().replace(" ", "") + ".example",
            owner=owner,
            team=north,
            segment=segment,
            arr=Decimal(arr),
            contract_start=start,
            renewal_date=today + dt.timedelta(days=renewal_in),
        )
        accounts[name] = account
        contacts = [f"user{i}@{account.domain}" for i in range(people)]
        events += _logins(account, contacts, range(active_to + 1, active_from), now)
    # Acme: after the slide, one lonely login a fortnight ago.
    events += _logins(accounts["Acme Rockets"], ["user0@acmerockets.example"], range(15, 16), now)
    foreign = AccountFactory(
        name="Wayne Enterprises",
        external_id="wayne",
        owner=other,
        team=south,
        renewal_date=today + dt.timedelta(days=30),
    )
    events += _logins(foreign, ["bruce@wayne.example"], range(1, 60), now)
    ingest_events(raw_rows=events, accounts=Account.objects.all(), now=now)
    upsert_tickets(
        raw_rows=[
            {
                "account": "acme-rockets",
                "external_id": "T-1042",
                "subject": "Exports time out since the upgrade",
                "priority": "urgent",
                "status": "open",
                "opened_at": (now - dt.timedelta(days=6)).isoformat(),
            }
        ],
        accounts=Account.objects.all(),
        now=now,
    )
    record_surveys(
        raw_rows=[
            {
                "account": "acme-rockets",
                "kind": "nps",
                "score": 9,
                "responded_at": (now - dt.timedelta(days=70)).isoformat(),
            },
            {
                "account": "acme-rockets",
                "kind": "nps",
                "score": 3,
                "comment": "Exports keep failing and nobody calls back.",
                "responded_at": (now - dt.timedelta(days=4)).isoformat(),
            },
            {
                "account": "globex",
                "kind": "nps",
                "score": 9,
                "responded_at": (now - dt.timedelta(days=20)).isoformat(),
            },
        ],
        accounts=Account.objects.all(),
        now=now,
    )
    # The pipeline's first two steps, every three days over the period, as beat would run them.
    for days_ago in range(84, -1, -3):
        at = now - dt.timedelta(days=days_ago)
        evaluate_journeys(now=at)
        recompute_health(now=at)
    acme = Account.objects.get(name="Acme Rockets")
    work.create_task(
        actor=None,
        values={
            "account": acme,
            "title": "Call the champion about exports",
            "due_date": today - dt.timedelta(days=2),
            "assignee": csm,
        },
    )
    Alert.objects.create(
        account=acme,
        recipient=csm,
        recipient_key=f"user:{csm.pk}",
        kind="band_entered",
        title="Acme Rockets entered red",
        body="Score 38.5 (was 81.0 three weeks ago).",
        severity="critical",
    )
    return {"csm": csm, "manager": manager, "acme": acme, "foreign": foreign}


@contextlib.contextmanager
def chromium() -> Iterator:
    """Headless Chromium. Playwright's sync API runs an event loop on this thread, so the ORM is
    not used while it is open (Django would open a second connection for that context)."""
    if not shutil.which(CHROMIUM):
        pytest.fail(f"No Chromium at {CHROMIUM}: apt-get install -y chromium (make services does it).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _shot(page, name: str, *, full_page: bool = True) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")  # the sticky top bar then sits at the top of the image
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)


def _log_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def test_csm_reads_why_a_score_dropped_then_acts_and_a_manager_opens_renewals(live_server):
    timings = {}
    started = time.monotonic()
    story = build_story(timezone.now())
    timings["data"] = time.monotonic() - started
    acme = story["acme"]
    assert acme.health_band == "red", acme.health_score
    with chromium() as browser:
        walk_through(browser, live_server.url, acme=acme, foreign=story["foreign"], timings=timings)
    assert Task.objects.filter(
        account=acme, title="Plan the renewal call with Acme", priority="high"
    ).exists()
    assert acme.milestones.filter(status="done", completed_by=story["csm"]).count() == 1
    print("browser test timings (s):", {k: round(v, 2) for k, v in timings.items()})


def walk_through(browser, base: str, *, acme: Account, foreign: Account, timings: dict) -> None:
    """The clicks of the scenario; no ORM in here (see chromium())."""
    started = time.monotonic()
    context = browser.new_context(viewport=LAPTOP)
    page = context.new_page()
    _log_in(page, base, "casey")
    assert page.locator(".nav .count").first.inner_text() == "1"  # the overdue task
    assert page.locator(".nav .count-alert").inner_text() == "1"
    assert "Wayne Enterprises" not in page.content()
    _shot(page, "01-csm-my-book")

    # The red card filters the book to the at-risk accounts; open Acme from there.
    page.click(".stat-red")
    page.wait_for_url("**/?band=red")
    assert page.locator("table.book tbody tr").count() >= 1
    page.click("text=Acme Rockets")
    page.wait_for_url(f"{base}/accounts/{acme.pk}/")

    # Why the score dropped: the measures that moved, and the components.
    changes = page.locator("ul.changes li")
    assert changes.count() >= 1
    assert page.locator("ul.changes li.down").count() >= 1
    assert page.locator("table.components tbody tr").count() == 12
    assert "Exports keep failing" in page.content()  # the NPS answer on the timeline
    _shot(page, "02-csm-account-why")

    # Complete a manual milestone in place.
    pending = page.locator("li.milestone:has(button:text('Mark done'))").first
    name = pending.locator(".milestone-name").inner_text()
    pending.locator("button").click()
    page.wait_for_load_state()
    assert "marked done" in page.locator(".messages").inner_text()
    done = page.locator("li.milestone", has_text=name)
    assert done.locator(".pill").inner_text() == "Done"

    # Add a task.
    page.click("summary:text('Add a task')")
    page.fill("#id_title", "Plan the renewal call with Acme")
    page.fill("#id_due_date", (timezone.localdate() + dt.timedelta(days=5)).isoformat())
    page.select_option("#id_priority", "high")
    page.click("button:text('Add task')")
    page.wait_for_load_state()
    assert "Plan the renewal call with Acme" in page.locator("#tasks").inner_text()
    _shot(page, "03-csm-account-after-actions")

    # A bad task is refused with a message, not a 500.
    page.click("summary:text('Add a task')")
    page.fill("#id_title", "No date")
    page.fill("#id_due_date", "")
    page.eval_on_selector("form[action$='/tasks/']", "f => f.noValidate = true")
    page.click("button:text('Add task')")
    page.wait_for_load_state()
    assert page.locator(".field.has-error").count() >= 1

    page.goto(f"{base}/accounts/{foreign.pk}/")
    assert page.locator("h1").inner_text() == "Not found"

    # The top bar's search: in scope only.
    page.fill(".search input", "wayne")
    page.press(".search input", "Enter")
    page.wait_for_url("**/?q=wayne")
    assert page.locator("table.book tbody tr td.empty-row").count() == 1
    page.fill(".search input", "acme")
    page.press(".search input", "Enter")
    page.wait_for_url("**/?q=acme")
    assert page.locator("table.book tbody a.strong").all_inner_texts() == ["Acme Rockets"]

    page.goto(f"{base}/tasks/")
    _shot(page, "04-csm-tasks")
    page.locator("li.inbox-item.overdue button:text('+1w')").click()
    page.wait_for_load_state()
    assert "Snoozed until" in page.locator(".messages").inner_text()
    assert page.locator("li.inbox-item.overdue").count() == 0

    page.click(".nav >> text=Alerts")
    page.wait_for_url(f"{base}/alerts/")
    _shot(page, "05-csm-alerts")
    page.click("button:text('Mark read')")
    page.wait_for_load_state()
    assert page.locator(".nav .count-alert").count() == 0
    context.close()

    phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = phone.new_page()
    _log_in(page, base, "casey")
    _shot(page, "06-phone-my-book", full_page=False)
    page.goto(f"{base}/accounts/{acme.pk}/")
    _shot(page, "07-phone-account", full_page=False)
    phone.close()
    timings["csm"] = time.monotonic() - started

    started = time.monotonic()
    context = browser.new_context(viewport=LAPTOP)
    page = context.new_page()
    _log_in(page, base, "morgan")
    page.click(".nav >> text=Renewals")
    page.wait_for_url(f"{base}/renewals/")
    assert "ARR at risk" in page.content()
    assert page.locator("text=Acme Rockets").count() >= 1
    assert "Wayne Enterprises" not in page.content()
    _shot(page, "08-manager-renewals")
    page.click(".tabs >> text=180 days")
    page.wait_for_url("**/renewals/?days=180")
    page.goto(f"{base}/portfolio/")
    _shot(page, "09-manager-portfolio")
    page.goto(f"{base}/journeys/")
    _shot(page, "10-manager-journeys")
    context.close()
    timings["manager"] = time.monotonic() - started
