"""Every metric of API.md on hand-made accounts, worked out by hand, as of a mid-day T.

T = 2026-03-10 12:00 UTC. A 7-day window is [03-03 12:00, 03-10 12:00): whole days 03-04..03-09
come from the daily rollup, the afternoon of 03-03 and the morning of 03-10 from raw events.
"""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine

from accounts.changes import update_account
from accounts.models import Account
from health.metrics import METRICS, Reading, compute, relations
from journeys.models import Journey, Milestone, MilestoneDefinition, Stage, StageChange
from tests.factories import AccountFactory
from tests.health.conftest import T, at, events, surveys, tickets, touchpoints
from tests.health.relations import relation_readings

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme() -> Account:
    account = AccountFactory(external_id="acme", renewal_date=dt.date(2026, 4, 9))
    events(
        account,
        ("login", "2026-03-10 11:59", "c1@acme.example", None),  # last minute of the window
        ("login", "2026-03-10 12:00", "c1@acme.example", None),  # at T: not before T, not counted
        ("login", "2026-03-09 08:00", "c2@acme.example", None),
        ("login", "2026-03-09 20:00", "c2@acme.example", None),
        ("login", "2026-03-03 13:00", "c3@acme.example", None),  # first partial day, inside
        ("login", "2026-03-03 11:00", "c3@acme.example", None),  # an hour before the window
        ("login", "2026-02-28 10:00", "c1@acme.example", None),  # the previous window
        ("login", "2026-03-15 09:00", "c1@acme.example", None),  # later data
        ("export", "2026-03-10 09:00", "c3@acme.example", None),
        ("order_placed", "2026-03-05 10:00", None, "100.50"),
        ("order_placed", "2026-03-09 01:00", None, "20"),
        ("order_placed", "2026-03-03 11:00", None, "7"),  # before the window
        ("order_placed", "2026-03-10 12:30", None, "50"),  # after T
    )
    tickets(
        account,
        ("t1", "urgent", "open", "2026-03-01 09:00", None),
        ("t2", "high", "closed", "2026-03-02 09:00", "2026-03-05 09:00"),  # closed before T
        ("t3", "high", "solved", "2026-03-04 09:00", "2026-03-11 09:00"),  # still open at T
        ("t4", "urgent", "open", "2026-03-10 13:00", None),  # opened after T
        ("t5", "normal", "solved", "2026-02-01 09:00", None),  # solved, no closing time
        ("t6", "normal", "pending", "2026-03-08 09:00", None),
    )
    surveys(
        account,
        ("nps", 9, "2026-02-01 10:00"),
        ("nps", 6, "2026-03-05 10:00"),
        ("nps", 10, "2026-03-11 10:00"),  # after T
        ("csat", 4, "2026-03-01 10:00"),
        ("csat", 5, "2026-03-02 10:00"),
        ("csat", 2, "2026-03-06 10:00"),
    )
    touchpoints(account, "2026-02-20 10:00", "2026-03-01 15:00", "2026-03-11 10:00")
    return account


@pytest.fixture
def empty() -> Account:
    return AccountFactory(external_id="empty", renewal_date=None)


def read(metric: str, *, as_of: dt.datetime = T, **params) -> dict[int, Decimal]:
    return {pk: r.value for pk, r in compute(metric, params, as_of=as_of).items()}


def value(metric: str, account: Account, *, as_of: dt.datetime = T, **params) -> Decimal | None:
    reading = compute(metric, params, as_of=as_of).get(account.pk)
    if reading is None:
        return METRICS[metric].empty
    return reading.value


HAND_WORKED = [
    ("event_count", {"event": "login", "days": 7}, 4),
    ("event_count", {"event": "login", "days": 1}, 2),  # 03-09 20:00 and 03-10 11:59
    ("event_count", {"event": "login", "days": 30}, 6),
    ("active_days", {"event": "login", "days": 7}, 3),  # 03-03, 03-09, 03-10
    ("active_days", {"event": "login", "days": 30}, 4),  # and 02-28
    ("active_contacts", {"event": "login", "days": 7}, 3),
    ("active_contacts", {"event": "login", "days": 1}, 2),
    ("active_contacts", {"days": 1}, 3),  # the export by c3 counts without an event filter
    ("event_value_sum", {"event": "order_placed", "days": 7}, Decimal("120.50")),
    ("usage_trend", {"event": "login", "days": 7}, 2),  # 4 now ÷ 2 before
    ("days_since_last_event", {"event": "login"}, 0),  # 1 minute ago
    ("open_tickets", {}, 3),  # t1, t3, t6
    ("urgent_open_tickets", {}, 2),  # t1 (urgent), t3 (high)
    ("tickets_opened", {"days": 7}, 2),  # t3, t6
    ("nps_latest", {}, 6),
    ("nps_average", {"days": 30}, 6),
    ("nps_average", {"days": 60}, Decimal("7.5")),
    ("csat_average", {"days": 30}, Decimal("3.6667")),  # 11 / 3, to four places
    ("days_to_renewal", {}, 30),
    ("days_since_touchpoint", {}, 8),  # 8 days 21 hours
]


@pytest.mark.parametrize(("metric", "params", "expected"), HAND_WORKED)
def test_metric_values_for_a_hand_made_account(acme, empty, metric, params, expected):
    assert value(metric, acme, **params) == Decimal(expected)


@pytest.mark.parametrize(
    ("metric", "params", "expected"),
    [
        ("event_count", {"event": "login", "days": 7}, 0),
        ("active_days", {"event": "login", "days": 7}, 0),
        ("active_contacts", {"days": 7}, 0),
        ("event_value_sum", {"event": "order_placed", "days": 7}, 0),
        ("open_tickets", {}, 0),
        ("urgent_open_tickets", {}, 0),
        ("tickets_opened", {"days": 7}, 0),
        ("usage_trend", {"event": "login", "days": 7}, None),
        ("days_since_last_event", {"event": "login"}, None),
        ("nps_latest", {}, None),
        ("nps_average", {"days": 30}, None),
        ("csat_average", {"days": 30}, None),
        ("days_to_renewal", {}, None),
        ("days_since_touchpoint", {}, None),
        ("milestone_completion", {}, None),
        ("overdue_milestones", {}, None),
    ],
)
def test_counts_are_zero_and_other_metrics_have_no_value_without_data(acme, empty, metric, params, expected):
    assert empty.pk not in compute(metric, params, as_of=T)
    assert value(metric, empty, **params) == (None if expected is None else Decimal(expected))


def test_metrics_as_of_an_earlier_time_ignore_what_came_later(acme):
    earlier = T - dt.timedelta(days=1)  # 03-09 12:00
    assert (
        value("event_count", acme, as_of=earlier, event="login", days=7) == 3
    )  # 03-09 08:00, 03-03 13:00, 03-03 11:00
    assert (
        value("days_since_last_event", acme, as_of=earlier, event="login") == 0
    )  # 03-09 08:00, 4 hours before
    assert value("nps_latest", acme, as_of=at("2026-03-05 09:00")) == 9
    assert value("open_tickets", acme, as_of=at("2026-03-03 00:00")) == 2  # t1, t2 (t5 taken as closed)
    assert value("days_to_renewal", acme, as_of=earlier) == 31


def test_later_data_moves_the_reading_at_a_later_time(acme):
    later = at("2026-03-12 11:58")
    assert value("days_since_last_event", acme, as_of=later, event="login") == 1  # 03-10 12:00 now counts
    assert value("nps_latest", acme, as_of=later) == 10
    assert value("open_tickets", acme, as_of=later) == 3  # t3 closed, t4 opened


def test_days_to_renewal_as_of_a_past_date_reads_the_date_known_then(acme):
    """The CRM rolls the renewal date on at renewal; a backtest at T must not see the new date."""
    with time_machine.travel(at("2026-04-09 15:00"), tick=False):
        update_account(actor=None, account=acme, values={"renewal_date": dt.date(2027, 4, 9)})
    with time_machine.travel(at("2026-05-01 10:00"), tick=False):
        update_account(actor=None, account=acme, values={"renewal_date": dt.date(2027, 5, 1)})
    newcomer = AccountFactory(external_id="late", renewal_date=None)
    with time_machine.travel(at("2026-03-20 10:00"), tick=False):
        update_account(actor=None, account=newcomer, values={"renewal_date": dt.date(2026, 9, 1)})

    assert value("days_to_renewal", acme, as_of=T) == 30  # 03-10 → 04-09, the date known at T
    assert value("days_to_renewal", acme, as_of=at("2026-04-20 00:00")) == 354  # → 2027-04-09
    assert value("days_to_renewal", acme, as_of=at("2026-06-01 00:00")) == 334  # → 2027-05-01
    assert value("days_to_renewal", newcomer, as_of=T) is None  # no renewal date at T
    assert value("days_to_renewal", newcomer, as_of=at("2026-03-21 00:00")) == 164


def test_a_midnight_as_of_reads_only_whole_days_and_matches_raw_counting(acme):
    midnight = at("2026-03-10 00:00")
    # [03-03 00:00, 03-10 00:00): 03-03 11:00 and 13:00, 03-09 08:00 and 20:00
    assert value("event_count", acme, as_of=midnight, event="login", days=7) == 4
    assert value("active_days", acme, as_of=midnight, event="login", days=7) == 2
    assert value("event_value_sum", acme, as_of=midnight, event="order_placed", days=7) == Decimal("127.50")


def test_each_metric_is_one_query_over_all_accounts(acme, empty, django_assert_num_queries):
    AccountFactory.create_batch(5)
    for key, metric in METRICS.items():
        if key in ("milestone_completion", "overdue_milestones"):
            continue  # journeys' milestone_progress: two queries, shared by both metrics
        if key in ("clv", "rfm_score"):
            continue  # insights' account_figures: a fixed handful, shared by both (tests/insights)
        params = {p.name: ("login" if p.kind == "event" else 7) for p in metric.params}
        # days_to_renewal also reads the renewal-date changes after T from the audit log.
        with django_assert_num_queries(2 if key == "days_to_renewal" else 1):
            compute(key, params, as_of=T)


def test_readings_carry_the_time_of_their_newest_input(acme):
    reading = compute("days_since_last_event", {"event": "login"}, as_of=T)[acme.pk]
    assert reading.data_at == at("2026-03-10 11:59")
    reading = compute("event_count", {"event": "login", "days": 7}, as_of=T)[acme.pk]
    assert reading.data_at == at("2026-03-10 11:59")
    assert compute("nps_latest", {}, as_of=T)[acme.pk].data_at == at("2026-03-05 10:00")


def test_milestone_metrics_read_the_current_stage_as_of_t():
    account = AccountFactory()
    journey = Journey.objects.create(key="test", name="Test")
    stage = Stage.objects.create(
        journey=journey, key="onboarding", name="Onboarding", order=1, entered_by="first"
    )
    defs = [
        MilestoneDefinition.objects.create(stage=stage, key=f"m{i}", name=f"M{i}", due_days=7 * i)
        for i in (1, 2, 3, 4)
    ]
    entered = T - dt.timedelta(days=20)
    visit = StageChange.objects.create(
        account=account, journey=journey, to_stage=stage, changed_at=entered, cause="rule"
    )
    done = {0: T - dt.timedelta(days=15), 2: T + dt.timedelta(days=1)}  # m3 is done only after T
    for index, definition in enumerate(defs):
        Milestone.objects.create(
            account=account,
            visit=visit,
            definition=definition,
            due_at=entered + dt.timedelta(days=definition.due_days),
            window_start=entered.date(),
            status="done" if index in done else "pending",
            completed_at=done.get(index),
        )
    bare = AccountFactory()  # in a stage without milestones
    StageChange.objects.create(
        account=bare, journey=journey, to_stage=stage, changed_at=entered, cause="rule"
    )
    # As of T: m1 done (1 of 4 = 25 %); m2 due T-6d and not done is overdue; m3, m4 not yet due.
    assert value("milestone_completion", account) == Decimal("25.0")
    assert value("overdue_milestones", account) == 1
    later = T + dt.timedelta(days=2)  # m3 done; m2 still overdue
    assert value("milestone_completion", account, as_of=later) == Decimal("50.0")
    assert value("overdue_milestones", account, as_of=later) == 1
    for metric in ("milestone_completion", "overdue_milestones"):
        for when in (T, later, entered - dt.timedelta(days=1)):
            assert relation_readings(metric, {}, as_of=when) == compute(metric, {}, as_of=when)
        others = Account.objects.exclude(pk__in=[account.pk, bare.pk])
        assert relation_readings(metric, {}, as_of=T, accounts=others) == {}
        mine = relation_readings(metric, {}, as_of=T, accounts=Account.objects.filter(pk=account.pk))
        assert mine == {account.pk: compute(metric, {}, as_of=T)[account.pk]}
        both = Account.objects.filter(pk__in=[account.pk, bare.pk])
        for when in (T, later):
            assert relation_readings(metric, {}, as_of=when, accounts=both) == compute(metric, {}, as_of=when)
        before = entered - dt.timedelta(days=1)  # not in a stage yet: no reading, scoped or not
        assert (
            relation_readings(metric, {}, as_of=before, accounts=Account.objects.filter(pk=account.pk)) == {}
        )


SQL_FORMS = [(m, p) for m, p, _ in HAND_WORKED if m not in ("days_to_renewal",)]


@pytest.mark.parametrize(("metric", "params"), SQL_FORMS)
@pytest.mark.parametrize("as_of", [T, at("2026-03-10 00:00"), at("2026-03-12 11:58"), at("2026-03-03 12:30")])
def test_each_metric_as_sql_reads_exactly_what_its_stream_reads(acme, empty, metric, params, as_of):
    """The recompute scores from the SQL form (``Relation``): same accounts, values and times."""
    AccountFactory(external_id="other", status=Account.Status.CHURNED)
    expected = compute(metric, params, as_of=as_of)
    assert expected or as_of != T  # at T the hand-made account has a reading of every one of these
    assert relation_readings(metric, params, as_of=as_of) == expected
    scope = Account.objects.filter(pk=acme.pk)
    assert relation_readings(metric, params, as_of=as_of, accounts=scope) == {
        pk: r for pk, r in expected.items() if pk == acme.pk
    }
    assert relation_readings(metric, params, as_of=as_of, accounts=Account.objects.none()) == {}


def test_metrics_computed_in_python_have_no_sql_form():
    found = relations([("days_to_renewal", {}), ("clv", {}), ("rfm_score", {})], as_of=T)
    assert found == [None, None, None]
    assert Reading  # the readings compared above are Reading values
