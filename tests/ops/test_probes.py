"""/healthz says the process lives; /readyz says whether it can serve, and if not, why."""

import time

from django.db.migrations.recorder import MigrationRecorder


def test_healthz_answers_without_touching_the_database(client):
    # No db fixture: any query would raise here.
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ok_when_database_broker_and_migrations_are(db, client):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "broker": "ok", "migrations": "ok"},
        "failed": [],
    }


def test_a_stopped_broker_makes_readyz_fail_quickly_with_the_reason(db, client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1

    started = time.monotonic()
    response = client.get("/readyz")

    assert time.monotonic() - started < 5
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert body["failed"] == ["broker"]
    assert body["checks"]["broker"].startswith("broker unreachable")
    assert "127.0.0.1" not in body["checks"]["broker"]
    assert body["checks"]["database"] == "ok"


def test_an_unapplied_migration_makes_readyz_fail_naming_it(db, client):
    MigrationRecorder.Migration.objects.filter(app="accounts", name="0002_roles").delete()

    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["migrations"]
    assert "accounts.0002_roles" in body["checks"]["migrations"]
