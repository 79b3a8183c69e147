"""Daily CSM digests and weekly renewal digests: who gets one, what it says, and only once."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine

from accounts.models import Account
from health.models import HealthScore, Scorecard
from playbooks.delivery import deliver_due_emails
from playbooks.digests import queue_daily_csm_digests, queue_weekly_renewal_digests
from playbooks.models import Alert, EmailDelivery, Task
from playbooks.tasks import send_daily_digests_task, send_weekly_digests_task
from tests.factories import AccountFactory, TeamFactory, UserFactory

NOW = dt.datetime(2026, 11, 12, 7, 0, tzinfo=dt.UTC)  # a Thursday, ISO week 2026-W46
TODAY = NOW.date()
DAY = dt.timedelta(days=1)

pytestmark = pytest.mark.django_db


def make_task(account, assignee, title, due, status=Task.Status.OPEN) -> Task:
    return Task.objects.create(account=account, assignee=assignee, title=title, due_date=due, status=status)


def make_alert(account, recipient, title, created_at) -> Alert:
    alert = Alert.objects.create(
        account=account, recipient=recipient, recipient_key=f"user:{recipient.pk}", kind="x", title=title
    )
    Alert.objects.filter(pk=alert.pk).update(created_at=created_at)  # auto_now_add otherwise
    return alert


def score(account, band, at, value) -> HealthScore:
    scorecard, _ = Scorecard.objects.get_or_create(
        segment="digest-tests",
        version=1,
        defaults={"name": "Digest tests", "red_below": 40, "green_from": 70},
    )
    return HealthScore.objects.create(
        account=account, scorecard=scorecard, computed_at=at, score=Decimal(value), band=band
    )


@pytest.fixture
def book(world, account_a):
    """csm_a's day: tasks, alerts, band changes, and things that must not show up."""
    other = AccountFactory(name="Initech", owner=world.csm_a, team=world.team_a)
    steady = AccountFactory(name="Steady Co", owner=world.csm_a, team=world.team_a)
    make_task(account_a, world.csm_a, "Call the champion", TODAY - 2 * DAY)
    make_task(other, world.csm_a, "Prepare the QBR", TODAY + 3 * DAY)
    make_task(account_a, world.csm_a, "Old finished task", TODAY - 5 * DAY, status=Task.Status.DONE)
    make_task(other, world.csm_b, "Someone else's task", TODAY)
    make_alert(account_a, world.csm_a, "Acme turned red", NOW - dt.timedelta(hours=3))
    make_alert(account_a, world.csm_a, "Last week's alert", NOW - 3 * DAY)
    # Acme: green → red within the day; Initech: red before, still red; Steady: scored once today.
    score(account_a, "green", NOW - 3 * DAY, 75)
    score(account_a, "red", NOW - dt.timedelta(hours=5), 35)
    Account.objects.filter(pk=account_a.pk).update(health_band="red", health_score=35)
    score(other, "red", NOW - 3 * DAY, 30)
    score(other, "red", NOW - dt.timedelta(hours=5), 31)
    score(steady, "green", NOW - dt.timedelta(hours=5), 80)
    return world


def delivered(smtp_server, address):
    return [m for m in smtp_server.messages if m.rcpt_tos == (address,)]


def test_daily_digest_goes_to_each_user_with_work_and_says_what_it_is(book, smtp_server, account_a):
    assert queue_daily_csm_digests(now=NOW) == 2  # csm_a, and csm_b (one open task)
    assert deliver_due_emails(now=NOW).sent == 2

    [digest] = delivered(smtp_server, "csm_a@example.com")
    assert digest.subject == "Your Lifeline day, Thu 12 Nov: 1 overdue, 1 open task, 1 new alert"
    assert digest.message_id == f"<lifeline-digest-csm-{book.csm_a.pk}-2026-11-12@lifeline.localhost>"
    for part in (digest.text, digest.html):
        assert "Call the champion" in part  # overdue
        assert "Prepare the QBR" in part  # open
        assert "Acme turned red" in part  # alert of the last day
        assert f"/accounts/{account_a.pk}/" in part
        assert "Old finished task" not in part
        assert "Someone else" not in part
        assert "Last week" not in part
        assert "Initech" in part  # its task, but no band change
        assert "Steady Co" not in part  # scored for the first time: no change
    assert "Acme: green → red (score 35.0)" in digest.text
    overdue, rest = digest.text.split("OPEN TASKS")
    assert "Call the champion" in overdue and "Prepare the QBR" in rest
    assert not delivered(smtp_server, "csm_a2@example.com")  # nothing to tell


def test_daily_digest_is_queued_once_a_day(book):
    assert queue_daily_csm_digests(now=NOW) == 2
    assert queue_daily_csm_digests(now=NOW + dt.timedelta(hours=10)) == 0
    assert queue_daily_csm_digests(now=NOW + DAY) == 2
    assert sorted(EmailDelivery.objects.values_list("key", flat=True)) == sorted(
        f"digest:csm:{user.pk}:{day}"
        for user in (book.csm_a, book.csm_b)
        for day in ("2026-11-12", "2026-11-13")
    )


def test_a_band_change_alone_earns_a_digest(world, account_a):
    score(account_a, "yellow", NOW - 2 * DAY, 55)
    score(account_a, "green", NOW - dt.timedelta(hours=1), 72)

    assert queue_daily_csm_digests(now=NOW) == 1
    digest = EmailDelivery.objects.get()
    assert digest.to_email == "csm_a@example.com"
    assert "Acme: yellow → green" in digest.text_body


def test_daily_digests_take_a_fixed_number_of_queries(world, django_assert_max_num_queries):
    for i in range(15):
        csm = UserFactory(username=f"csm{i}", role="csm")
        account = AccountFactory(owner=csm)
        make_task(account, csm, f"Task {i}", TODAY)
        make_alert(account, csm, f"Alert {i}", NOW - dt.timedelta(hours=1))
        score(account, "green", NOW - 2 * DAY, 80)
        score(account, "red", NOW - dt.timedelta(hours=1), 20)

    with django_assert_max_num_queries(6):
        assert queue_daily_csm_digests(now=NOW) == 15


@pytest.fixture
def renewals(world):
    """Team A renews Acme (red) in 30 days and Hooli (green) in 80; other accounts don't count."""
    a = world.team_a
    AccountFactory(name="Acme", team=a, owner=world.csm_a, renewal_date=TODAY + 30 * DAY,
                   arr=Decimal("10000"), health_band="red")  # fmt: skip
    AccountFactory(name="Hooli", team=a, owner=world.csm_a2, renewal_date=TODAY + 80 * DAY,
                   arr=Decimal("250000"), health_band="green")  # fmt: skip
    AccountFactory(name="Pied Piper", team=a, renewal_date=TODAY + 30 * DAY, arr=Decimal("5000"))
    AccountFactory(name="Later Inc", team=a, renewal_date=TODAY + 120 * DAY, arr=Decimal("99"))
    AccountFactory(name="Gone Ltd", team=a, renewal_date=TODAY + 10 * DAY, status="churned")
    AccountFactory(name="Past Corp", team=a, renewal_date=TODAY - DAY)
    AccountFactory(name="Globex", team=world.team_b, renewal_date=TODAY + 60 * DAY, arr=Decimal("7000"))
    TeamFactory(name="Team C", manager=UserFactory(username="manager_c", role="manager"))
    return world


def test_weekly_renewal_digest_lists_each_managers_renewals_and_arr_by_band(renewals, smtp_server):
    assert queue_weekly_renewal_digests(now=NOW) == 2  # manager_a and manager_b; Team C renews nothing
    deliver_due_emails(now=NOW)

    [digest] = delivered(smtp_server, "manager_a@example.com")
    assert digest.subject == "Renewals in the next 90 days: 3 accounts (2026-W46)"
    assert (
        digest.message_id == f"<lifeline-digest-renewals-{renewals.manager_a.pk}-2026-W46@lifeline.localhost>"
    )
    text = digest.text
    assert text.index("Acme") < text.index("Pied Piper") < text.index("Hooli")
    assert "(in 30 days)" in text and "(in 80 days)" in text
    for absent in ("Later Inc", "Gone Ltd", "Past Corp", "Globex"):
        assert absent not in text and absent not in digest.html
    assert "  - red: USD 10,000 (1 account)" in text
    assert "  - green: USD 250,000 (1 account)" in text
    assert "  - unscored: USD 5,000 (1 account)" in text
    assert text.index("- red:") < text.index("- green:") < text.index("- unscored:")
    assert "USD 250,000" in digest.html and "Hooli" in digest.html

    [other] = delivered(smtp_server, "manager_b@example.com")
    assert "Globex" in other.text and "Acme" not in other.text


def test_weekly_renewal_digest_is_queued_once_a_week(renewals):
    assert queue_weekly_renewal_digests(now=NOW) == 2
    assert queue_weekly_renewal_digests(now=NOW + 3 * DAY) == 0  # Sunday, same ISO week
    assert queue_weekly_renewal_digests(now=NOW + 4 * DAY) == 2  # Monday, 2026-W47


def test_weekly_digests_take_a_fixed_number_of_queries(world, django_assert_max_num_queries):
    for i in range(10):
        team = TeamFactory(manager=UserFactory(username=f"boss{i}", role="manager"))
        AccountFactory(team=team, renewal_date=TODAY + (i + 1) * DAY)

    with django_assert_max_num_queries(4):
        assert queue_weekly_renewal_digests(now=NOW) == 10


@time_machine.travel(NOW, tick=False)
def test_digest_tasks_queue_once(book, renewals, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        assert send_daily_digests_task() == 2
        assert send_weekly_digests_task() == 2
    assert len(callbacks) == 2  # delivery asked for, after the commit
    assert send_daily_digests_task() == 0
    assert send_weekly_digests_task() == 0
