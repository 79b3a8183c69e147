"""The score history's unique index holds score and band (migration health/0006), for index-only probes."""

import datetime as dt

import psycopg
import pytest
from django.db import connection, transaction

from health.models import HealthScore
from health.scoring import mark_history_all_visible, run_recompute_step
from tests.factories import AccountFactory
from tests.support.defaults import install_default_configuration

T = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)


def test_the_unique_run_constraint_covers_score_and_band(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'health_healthscore' AND indexname = %s",
            ["healthscore_unique_run"],
        )
        (definition,) = cursor.fetchone()
        cursor.execute("SELECT contype FROM pg_constraint WHERE conname = %s", ["healthscore_unique_run"])
        (kind,) = cursor.fetchone()

    assert definition.endswith("(account_id, computed_at) INCLUDE (score, band)"), definition
    assert definition.startswith("CREATE UNIQUE INDEX") and kind == "u"


def _history_pages() -> tuple[int, int]:
    """(pages, pages marked all-visible as the last VACUUM left them) of the history table."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_relation_size(oid) / current_setting('block_size')::int, relallvisible"
            " FROM pg_class WHERE relname = 'health_healthscore'"
        )
        return cursor.fetchone()


@pytest.mark.django_db(transaction=True)
def test_a_full_recompute_step_marks_the_history_all_visible_for_index_only_reads():
    install_default_configuration()  # the default scorecard (a transactional test's flush wipes it)
    AccountFactory.create_batch(40)

    run_recompute_step(now=T)

    pages, visible = _history_pages()
    assert HealthScore.objects.filter(computed_at=T).count() == 40
    assert pages >= 1 and visible == pages


def test_inside_a_transaction_the_history_is_not_vacuumed(db):
    mark_history_all_visible()  # a VACUUM here would raise: it cannot run in a transaction block

    assert connection.in_atomic_block


@pytest.mark.django_db(transaction=True)
def test_a_history_another_session_holds_is_skipped_and_the_step_still_succeeds():
    """A manual VACUUM, ANALYZE or CREATE INDEX CONCURRENTLY elsewhere: no wait, no failure."""
    install_default_configuration()
    AccountFactory.create_batch(5)
    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"],
        port=settings["PORT"] or 5432,
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
        dbname=settings["NAME"],
    ) as other:
        other.execute("LOCK TABLE health_healthscore IN SHARE UPDATE EXCLUSIVE MODE")

        changes = run_recompute_step(now=T)

        pages, visible = _history_pages()
    assert changes.accounts == 5 and HealthScore.objects.filter(computed_at=T).count() == 5
    assert pages >= 1 and visible == 0  # skipped: the next full run marks them


@pytest.mark.django_db(transaction=True)
def test_with_autocommit_off_the_history_is_not_vacuumed():
    transaction.set_autocommit(False)
    try:
        mark_history_all_visible()  # a VACUUM here would raise: a transaction is open
        assert not connection.in_atomic_block and not connection.get_autocommit()
    finally:
        transaction.rollback()
        transaction.set_autocommit(True)
