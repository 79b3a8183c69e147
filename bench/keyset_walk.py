"""Walking every account through ``/api/v1/accounts/``: numbered pages (OFFSET) vs keyset (``after``).

Run on a scratch database the bench generated (``python -m bench`` with the same
``BENCH_DATABASE``), as a superuser it makes (``bench-keyset-admin``), who sees every account::

    BENCH_DATABASE=lifeline_bench_keyset python -m bench.keyset_walk

Both walks read the same rows, ``page_size=500``, through the test client in one process (no HTTP),
one after the other, twice each (the second timing is kept): the figure is the ratio, not the
seconds. The numbered walk follows the default ordering (name, id); the keyset walk goes by id.
"""

import json
import os
import sys
import time
from pathlib import Path

from bench.__main__ import ROOT, _environment

PAGE_SIZE = 500


def walk(client, first_params: dict) -> dict:
    """Follow ``next`` from the first page to the last; the seconds of each page and the ids seen."""
    seconds, ids = [], []
    url, params = "/api/v1/accounts/", first_params
    while url:
        started = time.perf_counter()
        response = client.get(url, params)
        seconds.append(time.perf_counter() - started)
        assert response.status_code == 200, response.content[:300]
        body = response.json()
        ids += [row["id"] for row in body["results"]]
        url, params = body["next"], None
    return {"seconds": seconds, "ids": ids, "count": body["count"]}


def summary(name: str, result: dict) -> dict:
    seconds = result["seconds"]
    return {
        "walk": name,
        "pages": len(seconds),
        "rows": len(result["ids"]),
        "total_s": round(sum(seconds), 2),
        "first_page_ms": round(seconds[0] * 1000, 1),
        "last_page_ms": round(seconds[-1] * 1000, 1),
        "last_over_first": round(seconds[-1] / seconds[0], 2),
    }


def main() -> int:
    os.environ.update(_environment())
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.test import Client

    admin, _ = get_user_model().objects.update_or_create(
        username="bench-keyset-admin", defaults={"is_superuser": True, "is_staff": True}
    )
    client = Client(HTTP_HOST="localhost")
    client.force_login(admin)
    results = []
    for name, params in (("page", {"page": 1}), ("after", {"after": 0})):
        walk(client, {**params, "page_size": PAGE_SIZE})  # warm
        result = walk(client, {**params, "page_size": PAGE_SIZE})
        assert len(result["ids"]) == len(set(result["ids"])) == result["count"], name
        results.append(summary(name, result))
    print(json.dumps(results, indent=1))
    out = os.environ.get("BENCH_OUT")
    if out:
        Path(out).write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
