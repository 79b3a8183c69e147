"""Triggers find the right accounts and occurrences; firing acts once, honours cooldown and filters."""

import datetime as dt
from decimal import Decimal

import pytest

from accounts.ingestion import ingest_events
from accounts.models import Account, SurveyResponse
from playbooks.actions import fire_playbook
from playbooks.models import Alert, PlaybookRun, Task
from playbooks.triggers import TriggerConfigError, evaluate_trigger
from tests.factories import AccountFactory, AlertStepFactory, PlaybookFactory, TaskStepFactory, UserFactory

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
TODAY = NOW.date()


def fire(playbook, now=NOW):
    return fire_playbook(playbook=playbook, firings=evaluate_trigger(playbook, now=now), now=now)


@pytest.fixture
def renewing(world):
    soon = AccountFactory(
        name="Soon", renewal_date=TODAY + dt.timedelta(days=30), owner=world.csm_a, team=world.team_a
    )
    later = AccountFactory(
        name="Later", renewal_date=TODAY + dt.timedelta(days=200), owner=world.csm_a, team=world.team_a
    )
    return soon, later


def test_renewal_within_fires_once_per_renewal_and_creates_the_owners_task(renewing, world):
    soon, _ = renewing
    step = TaskStepFactory(
        playbook=PlaybookFactory(trigger_params={"days": 90}),
        title_template="Renewal prep: {{ account.name }}",
    )

    first = fire(step.playbook)
    second = fire(step.playbook)

    assert (first.fired, first.tasks_created) == (1, 1)
    assert (second.fired, second.tasks_created, second.tasks_updated) == (0, 0, 0)
    task = Task.objects.get()
    assert (task.account, task.assignee, task.title) == (soon, world.csm_a, "Renewal prep: Soon")
    assert task.due_date == TODAY + dt.timedelta(days=3)
    assert task.reason["trigger"] == "renewal_within"
    assert task.reason["values"]["days_to_renewal"] == 30


def test_a_new_occurrence_updates_the_open_task_instead_of_adding_one(renewing):
    soon, _ = renewing
    step = TaskStepFactory(playbook=PlaybookFactory(trigger_params={"days": 90}))
    fire(step.playbook)
    Account.objects.filter(pk=soon.pk).update(renewal_date=TODAY + dt.timedelta(days=31))

    outcome = fire(step.playbook)

    assert (outcome.fired, outcome.tasks_created, outcome.tasks_updated) == (1, 0, 1)
    assert Task.objects.count() == 1
    assert Task.objects.get().reason["values"]["days_to_renewal"] == 31
    assert PlaybookRun.objects.count() == 2


def test_cooldown_keeps_a_playbook_quiet_on_an_account(renewing):
    soon, _ = renewing
    playbook = PlaybookFactory(trigger_params={"days": 90}, cooldown_days=14)
    TaskStepFactory(playbook=playbook)
    fire(playbook)
    Account.objects.filter(pk=soon.pk).update(renewal_date=TODAY + dt.timedelta(days=31))

    assert fire(playbook, now=NOW + dt.timedelta(days=5)).fired == 0
    assert fire(playbook, now=NOW + dt.timedelta(days=15)).fired == 1


def test_filters_by_segment_arr_stage_and_band(world):
    base = {"renewal_date": TODAY + dt.timedelta(days=10)}
    match = AccountFactory(
        segment="enterprise", arr=Decimal("500000"), stage="renewal", health_band="red", **base
    )
    AccountFactory(segment="smb", arr=Decimal("500000"), stage="renewal", health_band="red", **base)
    AccountFactory(segment="enterprise", arr=Decimal("5000"), stage="renewal", health_band="red", **base)
    AccountFactory(segment="enterprise", arr=Decimal("500000"), stage="adoption", health_band="red", **base)
    AccountFactory(segment="enterprise", arr=Decimal("500000"), stage="renewal", health_band="green", **base)
    AccountFactory(
        segment="enterprise",
        arr=Decimal("500000"),
        stage="renewal",
        health_band="red",
        status="churned",
        **base,
    )
    playbook = PlaybookFactory(
        trigger_params={"days": 30},
        segments=["enterprise"],
        min_arr=Decimal("100000"),
        stages=["renewal"],
        bands=["red"],
    )

    assert [f.account_id for f in evaluate_trigger(playbook, now=NOW)] == [match.pk]


def test_nps_detractor_fires_per_answer_after_the_playbook_became_active(account_a):
    playbook = PlaybookFactory(
        trigger="nps_detractor", trigger_params={}, active_since=NOW - dt.timedelta(days=10)
    )
    for score, days_ago in ((3, 2), (6, 5), (7, 1), (2, 20)):
        SurveyResponse.objects.create(
            account=account_a,
            kind="nps",
            score=score,
            responded_at=NOW - dt.timedelta(days=days_ago),
            comment="meh",
        )
    SurveyResponse.objects.create(
        account=account_a, kind="csat", score=1, responded_at=NOW - dt.timedelta(days=1)
    )

    firings = evaluate_trigger(playbook, now=NOW)

    assert sorted(f.context["score"] for f in firings) == [3, 6]
    assert len({f.key for f in firings}) == 2


def test_inactivity_fires_once_per_quiet_spell(world):
    quiet = AccountFactory(contract_start=TODAY - dt.timedelta(days=300))
    busy = AccountFactory(contract_start=TODAY - dt.timedelta(days=300))
    AccountFactory(contract_start=TODAY - dt.timedelta(days=5))  # too young to be quiet for 21 days
    ingest_events(
        raw_rows=[
            {
                "account": quiet.external_id,
                "name": "login",
                "occurred_at": (NOW - dt.timedelta(days=30)).isoformat(),
            },
            {
                "account": busy.external_id,
                "name": "login",
                "occurred_at": (NOW - dt.timedelta(days=2)).isoformat(),
            },
        ],
        accounts=Account.objects.all(),
        now=NOW,
    )
    playbook = PlaybookFactory(trigger="inactivity", trigger_params={"days": 21, "event": "login"})

    firings = evaluate_trigger(playbook, now=NOW)

    assert [(f.account_id, f.context["last_active"]) for f in firings] == [
        (quiet.pk, (TODAY - dt.timedelta(days=30)).isoformat())
    ]


@pytest.mark.parametrize(
    ("active_days_ago", "event", "fires"),
    [
        (21, "login", False),  # active on the first day of the 21 quiet days: not quiet
        (22, "login", True),  # the day before it: quiet
        (None, "login", True),  # never active: quiet since ever
        (22, "", True),  # any event, none in the 21 days
        (3, "", False),  # any event: a report counts
    ],
)
def test_inactivity_counts_the_days_before_today(world, active_days_ago, event, fires):
    account = AccountFactory(contract_start=TODAY - dt.timedelta(days=300))
    rows = [{"account": account.external_id, "name": "report", "occurred_at": NOW.isoformat()}]  # today
    if active_days_ago is not None:
        when = dt.datetime.combine(TODAY - dt.timedelta(days=active_days_ago), dt.time(12), tzinfo=dt.UTC)
        rows.append(
            {
                "account": account.external_id,
                "name": "login" if event else "report",
                "occurred_at": when.isoformat(),
            }
        )
    ingest_events(raw_rows=rows, accounts=Account.objects.all(), now=NOW)
    params = {"days": 21, **({"event": event} if event else {})}
    playbook = PlaybookFactory(trigger="inactivity", trigger_params=params)

    firings = evaluate_trigger(playbook, now=NOW)

    last = None if active_days_ago is None else (TODAY - dt.timedelta(days=active_days_ago)).isoformat()
    assert [(f.account_id, f.context["last_active"]) for f in firings] == (
        [(account.pk, last)] if fires else []
    )


def test_recurring_review_fires_once_per_period_from_the_next_anniversary(world):
    account = AccountFactory(contract_start=TODAY - dt.timedelta(days=100))
    playbook = PlaybookFactory(
        trigger="recurring_review", trigger_params={"days": 90}, active_since=NOW - dt.timedelta(days=20)
    )
    late = PlaybookFactory(trigger="recurring_review", trigger_params={"days": 90}, active_since=NOW)
    TaskStepFactory(playbook=playbook)

    assert fire(playbook).fired == 1  # period 1 began 10 days ago, after the playbook was on
    assert fire(late).fired == 0  # turned on after period 1 began: waits for period 2
    assert fire(playbook, now=NOW + dt.timedelta(days=30)).fired == 0
    assert fire(playbook, now=NOW + dt.timedelta(days=85)).fired == 1
    assert fire(late, now=NOW + dt.timedelta(days=85)).fired == 1
    assert PlaybookRun.objects.filter(account=account, playbook=playbook).count() == 2


def test_task_overdue_and_close_when_cleared(account_a):
    overdue = Task.objects.create(account=account_a, title="Call", due_date=TODAY - dt.timedelta(days=2))
    playbook = PlaybookFactory(trigger="task_overdue", trigger_params={}, close_tasks_when_cleared=True)
    TaskStepFactory(playbook=playbook, title_template="Overdue: {{ values.task }}")

    assert fire(playbook).tasks_created == 1
    assert Task.objects.get(playbook=playbook).title == "Overdue: Call"
    overdue.status = Task.Status.DONE
    overdue.save(update_fields=["status"])

    outcome = fire(playbook)

    assert outcome.tasks_closed == 1
    assert Task.objects.get(playbook=playbook).status == Task.Status.CANCELLED


def test_expansion_signal_needs_green_and_growth(world):
    growing = AccountFactory(health_band="green")
    flat = AccountFactory(health_band="green")
    red_growing = AccountFactory(health_band="red")
    rows = []
    for account, before, after in ((growing, 10, 20), (flat, 10, 11), (red_growing, 10, 30)):
        rows += [
            {
                "account": account.external_id,
                "name": "login",
                "occurred_at": (NOW - dt.timedelta(days=40)).isoformat(),
            }
        ] * before
        rows += [
            {
                "account": account.external_id,
                "name": "login",
                "occurred_at": (NOW - dt.timedelta(days=5)).isoformat(),
            }
        ] * after
    ingest_events(raw_rows=rows, accounts=Account.objects.all(), now=NOW)
    playbook = PlaybookFactory(
        trigger="expansion_signal", trigger_params={"days": 30, "percent": 50, "event": "login"}
    )

    firings = evaluate_trigger(playbook, now=NOW)

    assert [(f.account_id, f.context["growth_percent"]) for f in firings] == [(growing.pk, 100.0)]


def test_missing_trigger_parameter_is_a_clear_error(world):
    with pytest.raises(TriggerConfigError, match="days"):
        evaluate_trigger(PlaybookFactory(trigger="inactivity", trigger_params={}), now=NOW)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [("owner", "csm_a"), ("team_manager", "manager_a"), ("user", "admin")],
)
def test_assignee_rules(world, rule, expected):
    AccountFactory(renewal_date=TODAY + dt.timedelta(days=5), owner=world.csm_a, team=world.team_a)
    step = TaskStepFactory(assignee_rule=rule, assignee_user=world.admin if rule == "user" else None)
    fire(step.playbook)
    assert Task.objects.get().assignee.username == expected


def test_round_robin_takes_the_team_in_turn_across_runs(world):
    for i in range(3):
        AccountFactory(
            name=f"A{i}", renewal_date=TODAY + dt.timedelta(days=5 + i), owner=world.csm_a, team=world.team_a
        )
    step = TaskStepFactory(assignee_rule="round_robin")
    fire(step.playbook)
    AccountFactory(name="A3", renewal_date=TODAY + dt.timedelta(days=9), owner=world.csm_a, team=world.team_a)
    fire(step.playbook)

    assignees = [t.assignee.username for t in Task.objects.order_by("id")]
    assert assignees == ["csm_a", "csm_a2", "csm_a", "csm_a2"]


def test_least_loaded_picks_fewest_open_tasks_then_fewest_accounts(world):
    busy_account = AccountFactory(owner=world.csm_a, team=world.team_a, renewal_date=None)
    Task.objects.create(account=busy_account, title="x", assignee=world.csm_a, due_date=TODAY)
    AccountFactory(renewal_date=TODAY + dt.timedelta(days=5), owner=world.csm_a, team=world.team_a)
    step = TaskStepFactory(assignee_rule="least_loaded")

    fire(step.playbook)

    assert Task.objects.get(step=step).assignee == world.csm_a2


def test_alert_recipients_by_rule_once_per_run(world):
    account = AccountFactory(renewal_date=TODAY + dt.timedelta(days=5), owner=world.csm_a, team=world.team_a)
    playbook = PlaybookFactory(trigger_params={"days": 30})
    AlertStepFactory(playbook=playbook, recipient_rule="team", severity="critical")
    AlertStepFactory(
        playbook=playbook, recipient_rule="addresses", recipient_addresses="vp@example.com, VP@example.com"
    )
    outsider = UserFactory(username="outsider")
    named = AlertStepFactory(playbook=playbook, recipient_rule="users")
    named.recipient_users.add(outsider)

    fire(playbook)
    fire(playbook)

    recipients = sorted(a.recipient.username if a.recipient else a.email for a in Alert.objects.all())
    assert recipients == ["csm_a", "csm_a2", "manager_a", "outsider", "vp@example.com"]
    assert {a.account for a in Alert.objects.all()} == {account}
    assert Alert.objects.filter(severity="critical").count() == 3


def test_a_broken_title_template_is_shown_as_written(world):
    AccountFactory(renewal_date=TODAY + dt.timedelta(days=5))
    step = TaskStepFactory(title_template="Hello {% if %}")
    fire(step.playbook)
    assert Task.objects.get().title == "Hello {% if %}"


def _scores(account, *history):
    """Write a score history [(days_ago, score, band), ...] and the account's current score."""
    from health.models import HealthScore, Scorecard

    scorecard = Scorecard.objects.order_by("id").first() or Scorecard.objects.create(
        name="Test", version=1, red_below=40, green_from=70
    )
    for days_ago, score, band in history:
        HealthScore.objects.create(
            account=account,
            scorecard=scorecard,
            computed_at=NOW - dt.timedelta(days=days_ago),
            score=score,
            band=band,
        )
    _, score, band = history[-1]
    # As the recompute keeps it: the first score of the last run of scores in the current band.
    entered_days_ago = next(
        days_ago
        for i, (days_ago, _, b) in enumerate(history)
        if all(later == band for _, _, later in history[i:])
    )
    Account.objects.filter(pk=account.pk).update(
        health_score=score, health_band=band, health_band_since=NOW - dt.timedelta(days=entered_days_ago)
    )


def test_band_entered_fires_once_per_entry_into_the_band(world):
    turned_red = AccountFactory(name="Turned red")
    always_green = AccountFactory(name="Green")
    _scores(turned_red, (10, 75, "green"), (5, 35, "red"), (1, 30, "red"))
    _scores(always_green, (10, 80, "green"), (1, 81, "green"))
    playbook = PlaybookFactory(trigger="band_entered", trigger_params={"band": "red"})
    TaskStepFactory(playbook=playbook)

    firings = evaluate_trigger(playbook, now=NOW)
    assert [(f.account_id, f.context["entered_at"]) for f in firings] == [
        (turned_red.pk, (NOW - dt.timedelta(days=5)).isoformat())
    ]
    assert fire(playbook).fired == 1
    assert fire(playbook, now=NOW + dt.timedelta(hours=1)).fired == 0


def test_score_dropped_compares_with_the_peak_of_the_window(world):
    dropped = AccountFactory(name="Dropped")
    slow = AccountFactory(name="Slow")
    _scores(dropped, (20, 90, "green"), (10, 80, "green"), (1, 60, "yellow"))
    _scores(slow, (30, 90, "green"), (1, 80, "green"))
    playbook = PlaybookFactory(trigger="score_dropped", trigger_params={"points": 15, "days": 14})

    firings = evaluate_trigger(playbook, now=NOW)

    assert [(f.account_id, f.context["drop"]) for f in firings] == [(dropped.pk, 20.0)]


def test_the_window_peaks_in_one_pass_match_the_portable_path(world):
    """PostgreSQL's GROUP BY and the correlated subqueries of the SQLite path find the same peaks."""
    from playbooks.triggers import _window_peaks, _window_peaks_portable

    tie = AccountFactory(name="Tie")  # the same peak twice: the first one counts
    _scores(tie, (12, 85, "green"), (6, 85, "green"), (1, 50, "yellow"))
    old_peak = AccountFactory(name="Old peak")  # the 95 is outside the window
    _scores(old_peak, (30, 95, "green"), (13, 70, "green"), (1, 69, "yellow"))
    _scores(AccountFactory(name="Unscored in the window"), (40, 60, "yellow"))
    accounts = Account.objects.filter(health_score__isnull=False)
    since = NOW - dt.timedelta(days=14)

    peaks = _window_peaks(accounts, since=since, now=NOW)

    assert sorted(peaks) == sorted(_window_peaks_portable(accounts, since=since, now=NOW))
    assert {(pk, peak, at) for pk, peak, at, _ in peaks} == {
        (tie.pk, Decimal("85"), NOW - dt.timedelta(days=12)),
        (old_peak.pk, Decimal("70"), NOW - dt.timedelta(days=13)),
    }
    # With a drop, only the accounts at least that far below their peak: the tie (85 -> 50).
    dropped = _window_peaks(accounts, since=since, now=NOW, drop=Decimal("35"))
    assert [(pk, peak, at) for pk, peak, at, _ in dropped] == [
        (tie.pk, Decimal("85"), NOW - dt.timedelta(days=12))
    ]
    assert _window_peaks(accounts, since=since, now=NOW, drop=Decimal("35.1")) == []


def test_stage_entered_fires_once_per_visit(world):
    from journeys.evaluation import evaluate_journeys

    account = AccountFactory(name="Newco", contract_start=TODAY, renewal_date=TODAY + dt.timedelta(days=365))
    evaluate_journeys(now=NOW)
    playbook = PlaybookFactory(
        trigger="stage_entered",
        trigger_params={"stage": "onboarding"},
        active_since=NOW - dt.timedelta(days=1),
    )
    TaskStepFactory(playbook=playbook, title_template="Welcome {{ account.name }}")

    assert fire(playbook).fired == 1
    assert fire(playbook, now=NOW + dt.timedelta(hours=1)).fired == 0
    assert Task.objects.get(playbook=playbook).title == "Welcome Newco"
    assert Task.objects.get(playbook=playbook).account == account


def test_milestone_overdue_fires_per_milestone_and_filters_by_key(world):
    from journeys.evaluation import evaluate_journeys
    from journeys.models import Milestone

    AccountFactory(name="Slowco", contract_start=TODAY, renewal_date=TODAY + dt.timedelta(days=365))
    evaluate_journeys(now=NOW)
    later = NOW + dt.timedelta(days=10)
    evaluate_journeys(now=later)
    overdue = Milestone.objects.filter(status="overdue")
    assert overdue.exists()
    any_milestone = PlaybookFactory(trigger="milestone_overdue", trigger_params={})
    one_key = PlaybookFactory(
        trigger="milestone_overdue", trigger_params={"milestone": overdue.first().definition.key}
    )

    assert {f.key for f in evaluate_trigger(any_milestone, now=later)} == {
        f"milestone:{m.pk}" for m in overdue
    }
    assert [f.key for f in evaluate_trigger(one_key, now=later)] == [f"milestone:{overdue.first().pk}"]
