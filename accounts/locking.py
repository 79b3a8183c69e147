"""One run at a time for a whole pipeline step, across workers and machines.

On PostgreSQL a transaction-level advisory lock, taken with ``pg_try_advisory_xact_lock`` so a
second caller skips instead of queueing (the first one does the work; the step is idempotent);
it is released when the transaction ends, even if the worker dies. SQLite serialises writers
already (``transaction_mode=IMMEDIATE``), so there the lock is the write transaction itself.
"""

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction


def lock_id(name: str) -> int:
    """A stable signed 64-bit id for a lock name."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


@contextmanager
def step_lock(name: str) -> Iterator[bool]:
    """Open a transaction holding the step's lock; yield False (and do nothing) if it is taken.

    Usage::

        with step_lock("health.recompute") as acquired:
            if not acquired:
                return None
            ... the step's work, in this transaction ...
    """
    with transaction.atomic():
        if connection.vendor != "postgresql":
            yield True
            return
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [lock_id(name)])
            acquired = cursor.fetchone()[0]
        yield acquired
