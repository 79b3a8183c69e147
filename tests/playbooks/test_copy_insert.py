"""Rows written by COPY and one INSERT … SELECT keep what bulk_create gave: values, defaults, conflicts."""

import datetime as dt

from accounts.bulk import copy_insert
from playbooks.models import Task
from tests.factories import AccountFactory, TaskStepFactory

DAY = dt.date(2026, 11, 23)


def test_copied_rows_keep_their_values_and_a_duplicate_open_task_is_skipped(db):
    step = TaskStepFactory()
    first, second = AccountFactory(), AccountFactory()

    def task(account, title):
        return Task(
            account=account,
            title=title,
            due_date=DAY,
            priority="high",
            playbook=step.playbook,
            step=step,
            reason={"why": title, "values": {"score": 41.5}},
        )

    rows = [task(first, "one"), task(second, "two"), task(first, "one again")]

    written = copy_insert(Task, rows, ignore_conflicts=True, copy_from=0)

    assert written == 2
    stored = {t.account_id: t for t in Task.objects.all()}
    assert {a: t.title for a, t in stored.items()} == {first.pk: "one", second.pk: "two"}
    assert stored[first.pk].status == "open" and stored[first.pk].priority == "high"
    assert stored[first.pk].reason == {"why": "one", "values": {"score": 41.5}}
    assert stored[first.pk].created_at is not None and stored[first.pk].updated_at is not None
    # A rerun writes nothing: the open task per step and account is there already.
    assert copy_insert(Task, rows[:2], ignore_conflicts=True, copy_from=0) == 0
    assert Task.objects.count() == 2


def test_ids_can_be_taken_first_for_rows_others_point_to(db):
    step = TaskStepFactory()
    rows = [Task(account=AccountFactory(), title=f"t{i}", due_date=DAY, step=step) for i in range(3)]

    copy_insert(Task, rows, with_ids=True, copy_from=0)

    assert sorted(Task.objects.values_list("pk", "title")) == sorted((t.pk, t.title) for t in rows)


def test_an_upsert_through_copy_updates_the_named_fields(db):
    from insights.models import AccountValue

    account = AccountFactory()
    at = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
    fixed = {"gross_margin": "0.700", "expected_lifetime_years": "10.00"}
    AccountValue.objects.create(account=account, computed_at=at, purchases=1, **fixed)
    row = AccountValue(account=account, computed_at=at + dt.timedelta(hours=1), purchases=5, **fixed)

    copy_insert(AccountValue, [row], unique_fields=["account"], update_fields=["purchases"], copy_from=0)

    stored = AccountValue.objects.get()
    assert (stored.purchases, stored.computed_at) == (5, at)


def test_copy_update_saves_the_named_fields_as_bulk_update_does(db):
    from accounts.bulk import copy_update

    step = TaskStepFactory()
    tasks = [
        Task.objects.create(account=AccountFactory(), title=f"t{i}", due_date=DAY, step=step, reason={"n": i})
        for i in range(4)
    ]
    untouched = tasks.pop()
    for i, task in enumerate(tasks):
        task.title, task.due_date, task.reason = (
            f"new {i}",
            DAY - dt.timedelta(days=i),
            {"n": i, "why": "<&>"},
        )
        task.priority = "low"  # not named: stays as stored

    assert copy_update(Task, tasks, ["title", "due_date", "reason"], copy_from=0) == 3

    stored = {t.pk: t for t in Task.objects.all()}
    for i, task in enumerate(tasks):
        assert (stored[task.pk].title, stored[task.pk].due_date) == (f"new {i}", DAY - dt.timedelta(days=i))
        assert stored[task.pk].reason == {"n": i, "why": "<&>"} and stored[task.pk].priority != "low"
    assert (stored[untouched.pk].title, stored[untouched.pk].reason) == ("t3", {"n": 3})
    assert copy_update(Task, [], ["title"]) == 0
