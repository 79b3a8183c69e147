"""The load script of ``make load`` (``bench.load``) against a live server: it must keep working.

The figures themselves belong to ``make load`` (docs/reliability.md); this only proves that every
scenario logs in, reaches each page and API it claims to, and counts errors.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from accounts.models import Event
from tests.factories import AccountFactory, TeamFactory, UserFactory

ROOT = Path(__file__).resolve().parents[2]
MIXED_NAMES = {
    "page My book /",
    "page /accounts/{id}/",
    "page /tasks/",
    "page /alerts/",
    "page /renewals/",
    "page /portfolio/",
    "page /journeys/",
    "GET /api/v1/accounts/",
    "GET /api/v1/accounts/{id}/",
    "POST /api/v1/events/ (20 rows)",
    "GET /api/v1/reports/renewals/",
}


@pytest.fixture
def demo_like_users(default_configuration):
    admin = UserFactory(username="admin", role="admin", password="lifeline")
    manager = UserFactory(username="manager1", role="manager", password="lifeline")
    csm = UserFactory(username="csm1", role="csm", password="lifeline")
    team = TeamFactory(name="North", manager=manager)
    team.members.add(csm)
    AccountFactory.create_batch(5, owner=csm, team=team)
    return admin, manager, csm


def _run_load(base_url: str, scenario: str, out: Path, csm: str = "csm1", seconds: int = 4) -> dict:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.load",
            "--base-url",
            base_url,
            "--scenario",
            scenario,
            "--users",
            "3",
            "--seconds",
            str(seconds),
            "--spawn-rate",
            "3",
            "--login",
            f"csm={csm}",
            "--login",
            "manager=manager1",
            "--login",
            "integrator=admin",
            "--json",
            str(out),
        ],
        cwd=ROOT,
        check=True,
        timeout=180,
        capture_output=True,
    )
    return json.loads(out.read_text())


@pytest.mark.integration
def test_mixed_load_reaches_pages_and_api_without_errors(live_server, demo_like_users, tmp_path):
    figures = _run_load(live_server.url, "mixed", tmp_path / "mixed.json")

    # How many requests fit in the seconds depends on the machine: the figures are make load's job.
    assert figures["total"]["requests"] > 0
    assert figures["total"]["errors"] == 0, figures["failures"]
    names = {row["name"] for row in figures["requests"]}
    assert names <= MIXED_NAMES, names - MIXED_NAMES
    assert sum(row["requests"] for row in figures["requests"]) == figures["total"]["requests"]
    assert all(row["p99_ms"] >= row["p50_ms"] for row in figures["requests"])
    if "POST /api/v1/events/ (20 rows)" in names:
        assert Event.objects.filter(idempotency_key__startswith="load-").exists()


@pytest.mark.integration
def test_closed_loop_measures_my_book_only(live_server, demo_like_users, tmp_path):
    figures = _run_load(live_server.url, "closed-loop", tmp_path / "closed.json")

    assert [row["name"] for row in figures["requests"]] == ["page My book /"]
    assert figures["requests"][0]["requests"] > 0
    assert figures["total"]["errors"] == 0


@pytest.mark.integration
def test_a_refused_request_counts_as_an_error(live_server, demo_like_users, tmp_path):
    """A CSM who owns nothing asks for account 0: the 404s must show up as errors, not vanish."""
    UserFactory(username="csm9", role="csm", password="lifeline")
    # 8 s: enough requests that the account page (a third of the CSM's) is all but sure to be among them.
    figures = _run_load(live_server.url, "pages", tmp_path / "pages.json", csm="csm9", seconds=8)

    by_name = {row["name"]: row for row in figures["requests"]}
    assert by_name["page /accounts/{id}/"]["errors"] == by_name["page /accounts/{id}/"]["requests"] > 0
    assert figures["total"]["errors"] > 0
    assert any("404" in failure["error"] for failure in figures["failures"])
