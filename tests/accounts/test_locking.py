"""A step lock lets one holder in at a time, across connections, and frees itself at commit."""

import threading

import pytest
from django.db import connection

from accounts.locking import lock_id, step_lock

pytestmark = pytest.mark.django_db(transaction=True)


def try_from_another_connection(name: str) -> bool:
    result = {}

    def run():
        try:
            with step_lock(name) as acquired:
                result["acquired"] = acquired
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    return result["acquired"]


def test_a_held_step_lock_is_refused_elsewhere_and_freed_after():
    with step_lock("health.recompute") as acquired:
        assert acquired is True
        assert try_from_another_connection("health.recompute") is False
        assert try_from_another_connection("journeys.evaluate") is True
    assert try_from_another_connection("health.recompute") is True


def test_lock_ids_are_stable_and_distinct():
    assert lock_id("a") == lock_id("a")
    assert lock_id("a") != lock_id("b")
    assert -(2**63) <= lock_id("health.recompute") < 2**63
