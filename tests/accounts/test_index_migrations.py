"""Migrations accounts 0010, insights 0005 and playbooks 0005: the indexes nothing read are dropped,
and the ones kept are renamed in place, not rebuilt (nor the owner's foreign key re-validated)."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [
    ("accounts", "0009_account_renewal_index"),
    ("insights", "0004_recency_derived_when_read"),
    ("playbooks", "0004_email_due_index_with_id"),
]
AFTER = [
    ("accounts", "0010_account_indexes_only_used"),
    ("insights", "0005_rfm_segment_plain_index"),
    ("playbooks", "0005_emaildelivery_key_constraint"),
]


def _migrate(targets: list[tuple[str, str]] | None = None) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(targets or executor.loader.graph.leaf_nodes())


def _relations(table: str) -> dict[str, int]:
    """The table's indexes and constraints, by name: the oid of each (a rebuild gives a new one)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, c.oid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE i.indrelid = %s::regclass"
            " UNION ALL SELECT conname, oid FROM pg_constraint WHERE conrelid = %s::regclass",
            [table, table],
        )
        return dict(cursor.fetchall())


@pytest.mark.django_db(transaction=True)
def test_the_unread_indexes_go_and_the_kept_ones_are_renamed_in_place():
    tables = ("accounts_account", "insights_accountvalue", "playbooks_emaildelivery")
    try:
        _migrate(BEFORE)
        before = {table: _relations(table) for table in tables}
        _migrate(AFTER)
        after = {table: _relations(table) for table in tables}
    finally:
        _migrate()

    old, new = before["accounts_account"], after["accounts_account"]
    gone = {"accounts_account_owner_id_7b1fcbd0", "accounts_account_stage_4f34fdfd_like"}
    assert gone <= set(old) and not gone & set(new)
    assert new["account_stage_idx"] == old["accounts_account_stage_4f34fdfd"]  # renamed
    owner_key = "accounts_account_owner_id_7b1fcbd0_fk_auth_user_id"
    assert new[owner_key] == old[owner_key]  # the foreign key untouched
    assert set(new) == set(old) - gone - {"accounts_account_stage_4f34fdfd"} | {"account_stage_idx"}

    old, new = before["insights_accountvalue"], after["insights_accountvalue"]
    assert "insights_accountvalue_rfm_segment_384f3f12_like" in old
    assert new["accountvalue_rfm_segment_idx"] == old["insights_accountvalue_rfm_segment_384f3f12"]
    assert not {name for name in new if name.endswith("_like") or "rfm_segment_384f3f12" in name}

    old, new = before["playbooks_emaildelivery"], after["playbooks_emaildelivery"]
    assert (
        "playbooks_emaildelivery_key_5c68f5f7_like" in old
        and "playbooks_emaildelivery_key_5c68f5f7_like" not in new
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT contype FROM pg_constraint WHERE conname = 'emaildelivery_key_unique'"
            " AND conrelid = 'playbooks_emaildelivery'::regclass"
        )
        assert cursor.fetchall() == [("u",)]
    assert new["emaildelivery_key_unique"] in old.values()  # the same unique constraint, renamed
