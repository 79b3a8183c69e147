"""The playbooks step's fast paths: plain rows inserted (COPY or VALUES), templates rendered per node.

Both must give exactly what the slower paths gave: the same rows, the same conflicts skipped,
the same texts.
"""

import datetime as dt
from decimal import Decimal

import pytest

from accounts.bulk import insert_rows
from playbooks.actions import render_text, renderer, template_context
from playbooks.models import PlaybookRun
from tests.factories import AccountFactory, PlaybookFactory

AT = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)
FIELDS = ["playbook", "account", "trigger_key", "context", "fired_at"]
RETURNING = ["id", "account", "trigger_key", "context", "fired_at"]


@pytest.mark.parametrize("copy_from", [0, 1000], ids=["copy", "values"])
def test_plain_rows_are_written_and_only_the_new_ones_returned(db, copy_from):
    playbook = PlaybookFactory()
    first, second = AccountFactory(), AccountFactory()
    PlaybookRun.objects.create(playbook=playbook, account=first, trigger_key="k1", context={}, fired_at=AT)
    rows = [
        (playbook.pk, first.pk, "k1", {"score": 1}, AT),  # there already: skipped, not returned
        (playbook.pk, first.pk, "k2", {"score": 41.5, "band": "red"}, AT),
        (playbook.pk, second.pk, "k1", {"nested": {"a": [1, 2]}}, AT),
    ]

    written = insert_rows(
        PlaybookRun, FIELDS, rows, ignore_conflicts=True, returning=RETURNING, copy_from=copy_from
    )

    assert sorted(row[1:] for row in written) == sorted(
        [
            (first.pk, "k2", {"score": 41.5, "band": "red"}, AT),
            (second.pk, "k1", {"nested": {"a": [1, 2]}}, AT),
        ]
    )
    stored = {(r.account_id, r.trigger_key): r for r in PlaybookRun.objects.all()}
    assert {pk for pk, *_ in written} == {stored[(first.pk, "k2")].pk, stored[(second.pk, "k1")].pk}
    assert stored[(first.pk, "k2")].context == {"score": 41.5, "band": "red"}
    assert stored[(first.pk, "k1")].context == {}  # the existing row kept
    # Again: everything conflicts, nothing is written or returned.
    assert insert_rows(PlaybookRun, FIELDS, rows, ignore_conflicts=True, returning=RETURNING) == []
    assert PlaybookRun.objects.count() == 3


def test_without_returning_nothing_is_read_back(db):
    playbook = PlaybookFactory()
    account = AccountFactory()

    result = insert_rows(PlaybookRun, FIELDS, [(playbook.pk, account.pk, "k", [1, "two"], AT)], copy_from=0)

    assert result == []
    assert PlaybookRun.objects.get().context == [1, "two"]


TEMPLATES = [
    "Welcome {{ account.name }} and schedule the kickoff call",
    "{{ account.name }} entered onboarding on {{ values.entered_at|slice:':10' }}.",
    "ARR {{ account.currency }} {{ account.arr }}, renewal {{ account.renewal_date|default:'not set' }}.",
    "{{ account.name }} has gone quiet: no login since {{ values.last_active|default:'ever' }}",
    "  {{ values.missing }}{{ account.nope.deeper }} {{ reason.playbook|upper }} {{ playbook.name }}  ",
    "{% if values.score < 40 %}Low{% else %}Fine{% endif %} {{ account.name }}",  # a tag: the slow path
    "{{ account.name|nosuchfilter }}",  # broken: shown as written
    "{% if %}",  # broken: shown as written
    "",
]


@pytest.mark.parametrize("source", TEMPLATES)
def test_the_per_node_renderer_gives_render_text_s_text(db, source):
    account = AccountFactory(
        name="Tom & <Jerry>", arr=Decimal("12000.50"), currency="EUR", renewal_date=dt.date(2027, 1, 31)
    )
    playbook = PlaybookFactory(name="Save <them>")
    run = PlaybookRun(
        playbook=playbook,
        account=account,
        trigger_key="k",
        context={"entered_at": "2026-11-20T10:00:00+00:00", "last_active": None, "score": 35},
        fired_at=AT,
    )
    context = template_context(account, playbook, run)

    assert renderer(source)(context) == render_text(source, context)
    if source.startswith("ARR"):  # the values really are rendered, unescaped and localised as before
        assert renderer(source)(context) == "ARR EUR 12000.50, renewal Jan. 31, 2027."
    if source.startswith("Welcome"):
        assert renderer(source)(context) == "Welcome Tom & <Jerry> and schedule the kickoff call"
