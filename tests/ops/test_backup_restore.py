"""The backup procedure of docs/operations.md, end to end: dump a seeded database, restore it into
a new one, and find every account, score, task and alert intact."""

import datetime as dt
import io
import subprocess

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection

from playbooks.pipeline import run_pipeline

NOW = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)

# Each table with the columns that must come back the same.
CHECKED = {
    "accounts_account": "id, external_id, name, arr, health_score, health_band, stage, owner_id",
    "health_healthscore": "*",
    "playbooks_task": "id, account_id, title, status, assignee_id, due_date",
    "playbooks_alert": "id, account_id, recipient_id, title, read_at",
}


def libpq_args(name: str) -> list[str]:
    db = connection.settings_dict
    return ["-h", db["HOST"] or "127.0.0.1", "-p", str(db["PORT"] or 5432), "-U", db["USER"], name]


def rows(conninfo: str) -> dict[str, list[tuple]]:
    with psycopg.connect(conninfo) as conn:
        return {
            table: conn.execute(f"SELECT {columns} FROM {table} ORDER BY 1").fetchall()
            for table, columns in CHECKED.items()
        }


def conninfo(name: str) -> str:
    db = connection.settings_dict
    return f"host={db['HOST'] or '127.0.0.1'} port={db['PORT'] or 5432} user={db['USER']} dbname={name}"


@pytest.mark.django_db(transaction=True)
def test_a_dump_restored_into_a_new_database_has_every_account_score_task_and_alert(
    default_configuration, tmp_path
):
    call_command("seed_demo", "--accounts", "15", "--now", NOW.isoformat(), stdout=io.StringIO())
    run_pipeline(now=NOW)
    source = connection.settings_dict["NAME"]
    before = rows(conninfo(source))
    assert all(before[table] for table in ("accounts_account", "health_healthscore", "playbooks_task"))

    dump = tmp_path / "lifeline.dump"
    restored = f"{source}_restored"
    subprocess.run(["pg_dump", "--format=custom", "--file", str(dump), *libpq_args(source)], check=True)
    subprocess.run(["dropdb", "--if-exists", *libpq_args(restored)], check=True)
    subprocess.run(["createdb", *libpq_args(restored)], check=True)
    try:
        subprocess.run(
            [
                "pg_restore",
                "--no-owner",
                "--exit-on-error",
                "-d",
                restored,
                *libpq_args(source)[:-1],
                str(dump),
            ],
            check=True,
        )
        assert rows(conninfo(restored)) == before
    finally:
        subprocess.run(["dropdb", "--if-exists", *libpq_args(restored)], check=True)
