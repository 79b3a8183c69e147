"""The authorization matrix (API.md: Authentication and errors; DESIGN.md: Visibility).

Every API route and every page that takes an object id, each of its methods, for each caller:
anonymous, a CSM of the object's team, a CSM of another team, the manager of the team, the
manager of another team, an admin. The routes come from the URL resolver, so a new route that is
not in ``MATRIX`` (or deliberately in ``NOT_IN_MATRIX``) fails ``test_every_route_is_in_the_matrix``.

For each cell: anonymous → 401 (API) or a redirect to the login page; an object of another team →
404 whatever the method, never its data, nothing written; a role that may not → 403, nothing
written; a role that may → the success status. No answer to anyone carries the marker of a team
they cannot see, and no list, filter or search returns a foreign row.
"""

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import connection, transaction
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from accounts.models import Account, AuditEntry, Contact, Event, SurveyResponse, Ticket, Touchpoint
from health.models import Override, Scorecard
from journeys.models import Milestone, StageChange
from playbooks.models import Alert, Playbook, Task
from tests.security.conftest import ALPHA, BRAVO

ROLES = ("anonymous", "csm_same", "csm_other", "manager_same", "manager_other", "admin")
EVERYONE = {"csm", "manager", "admin"}
MANAGERS = {"manager", "admin"}
ADMINS = {"admin"}

# Routes outside the matrix, each with the reason.
NOT_IN_MATRIX = {
    "login": "the login form itself (public); its limits are tested in test_credentials.py",
    "logout": "ends the caller's own session only",
    "healthz": "public liveness probe, returns no data",
    "readyz": "public readiness probe, returns no data",
    "metrics": "Prometheus exposition, guarded by LIFELINE_METRICS_TOKEN (tests/ops/test_metrics.py)",
    "schema": "the public OpenAPI document",
    "api-docs": "the public API documentation page",
    "api-redoc": "the public API documentation page",
    "api-token": "public by design: trades a username and password for a token (test_credentials.py)",
}


@dataclass
class Op:
    """One method on one route: who may, with which body, and what success looks like."""

    roles: set[str]  # roles that may, on an object in their scope
    ok: int
    body: Callable[[Any], Any] | None = None
    # A collection route whose body names team A's account: another team's caller gets a 400
    # ("unknown account"), as if the account did not exist.
    body_names_account: bool = False
    # Roles of team A that get a 404 although the object is in their scope (e.g. someone else's alert).
    not_theirs: set[str] = field(default_factory=set)


@dataclass
class Route:
    target: str | None  # "account", "contact", "task", "alert", "scorecard", "playbook" or None
    ops: dict[str, Op]
    page: bool = False  # a server-rendered page (anonymous → login redirect, forms not JSON)


def _future(days: int) -> str:
    return (timezone.now() + dt.timedelta(days=days)).isoformat()


def _today(days: int = 0) -> str:
    return (timezone.localdate() + dt.timedelta(days=days)).isoformat()


def _scorecard_body(w) -> dict:
    measures = [
        {
            "key": m.key,
            "label": m.label,
            "metric": m.metric,
            "params": m.params,
            "weight": float(m.weight),
            "mapping": m.mapping,
        }
        for m in w.scorecard.measures.all()
    ]
    return {"name": "New card", "segment": "matrix", "red_below": 40, "green_from": 70, "measures": measures}


ROW = {"account": f"{ALPHA[:5]}-acct"}

MATRIX: dict[str, Route] = {
    # --- credentials ------------------------------------------------------------------------
    "api-token-revoke": Route(None, {"post": Op(EVERYONE, 200)}),
    # --- accounts app ---------------------------------------------------------------------
    "account-list": Route(
        None,
        {
            "get": Op(EVERYONE, 200),
            "post": Op(
                MANAGERS,
                201,
                lambda w: {"external_id": "new-acct", "name": "New", "team": w.a.account.team_id},
                body_names_account=True,
            ),
        },
    ),
    "account-detail": Route(
        "account",
        {
            "get": Op(EVERYONE, 200),
            "patch": Op(EVERYONE, 200, lambda w: {"name": "Renamed"}),
            "put": Op(EVERYONE, 200, lambda w: {"external_id": w.a.account.external_id, "name": "Renamed"}),
            "delete": Op(MANAGERS, 204),
        },
    ),
    "account-by-external-id": Route("account", {"put": Op(EVERYONE, 200, lambda w: {"name": "Renamed"})}),
    "contact-list": Route(
        None,
        {
            "get": Op(EVERYONE, 200),
            "post": Op(
                EVERYONE, 201, lambda w: {"account": w.a.account.pk, "name": "New"}, body_names_account=True
            ),
        },
    ),
    "contact-detail": Route(
        "contact",
        {
            "get": Op(EVERYONE, 200),
            "patch": Op(EVERYONE, 200, lambda w: {"name": "Renamed"}),
            "delete": Op(EVERYONE, 204),
        },
    ),
    "events": Route(
        None,
        {
            "get": Op(EVERYONE, 200),
            "post": Op(
                EVERYONE,
                201,
                lambda w: [{**ROW, "name": "login", "occurred_at": _future(-1)}],
                body_names_account=True,
            ),
        },
    ),
    "tickets": Route(
        None,
        {
            "get": Op(EVERYONE, 200),
            "post": Op(
                EVERYONE,
                201,
                lambda w: [{**ROW, "external_id": "t-new", "opened_at": _future(-1)}],
                body_names_account=True,
            ),
        },
    ),
    "surveys": Route(
        None,
        {
            "get": Op(EVERYONE, 200),
            "post": Op(
                EVERYONE,
                201,
                lambda w: [{**ROW, "kind": "nps", "score": 9, "responded_at": _future(-1)}],
                body_names_account=True,
            ),
        },
    ),
    "touchpoints": Route(
        None,
        {
            "get": Op(EVERYONE, 200),
            "post": Op(
                EVERYONE,
                201,
                lambda w: [{**ROW, "kind": "call", "occurred_at": _future(-1), "summary": "hi"}],
                body_names_account=True,
            ),
        },
    ),
    # --- journeys -------------------------------------------------------------------------
    "account-journey": Route("account", {"get": Op(EVERYONE, 200)}),
    "account-milestone-complete": Route("account", {"post": Op(EVERYONE, 200)}),
    "account-stage": Route(
        "account", {"post": Op(EVERYONE, 200, lambda w: {"stage": "adoption", "reason": "r"})}
    ),
    # --- health ---------------------------------------------------------------------------
    "account-health": Route("account", {"get": Op(EVERYONE, 200)}),
    "account-health-history": Route("account", {"get": Op(EVERYONE, 200)}),
    "account-health-override": Route(
        "account",
        {
            "post": Op(EVERYONE, 201, lambda w: {"band": "red", "reason": "r", "expires_at": _future(5)}),
            "delete": Op(EVERYONE, 204),
        },
    ),
    "health-recompute": Route(None, {"post": Op(ADMINS, 202)}),
    "scorecard-list": Route(None, {"get": Op(EVERYONE, 200), "post": Op(ADMINS, 201, _scorecard_body)}),
    "scorecard-detail": Route(
        "scorecard", {"get": Op(EVERYONE, 200), "patch": Op(ADMINS, 200, lambda w: {"name": "Renamed"})}
    ),
    "scorecard-preview": Route("scorecard", {"get": Op(EVERYONE, 200)}),
    "scorecard-publish": Route("scorecard", {"post": Op(ADMINS, 200)}),
    "scorecard-backtest": Route(
        "scorecard",
        {
            "post": Op(
                MANAGERS, 200, lambda w: {"as_of": _today(-40), "outcome": "churned", "horizon_days": 30}
            )
        },
    ),
    "scorecard-suggest-weights": Route(
        "scorecard",
        # Too little history to fit anything: the admin passes the role check and gets the reason.
        {
            "post": Op(
                ADMINS,
                400,
                lambda w: {
                    "fit_as_of": _today(-60),
                    "eval_as_of": _today(-30),
                    "outcome": "churned",
                    "horizon_days": 20,
                },
            )
        },
    ),
    # --- playbooks and work ---------------------------------------------------------------
    "task-list": Route(
        None,
        {
            "get": Op(EVERYONE, 200),
            "post": Op(
                EVERYONE,
                201,
                lambda w: {"account": w.a.account.pk, "title": "New", "due_date": _today(3)},
                body_names_account=True,
            ),
        },
    ),
    "task-detail": Route(
        "task", {"get": Op(EVERYONE, 200), "patch": Op(EVERYONE, 200, lambda w: {"status": "done"})}
    ),
    "alert-list": Route(None, {"get": Op(EVERYONE, 200)}),
    "alert-detail": Route("alert", {"get": Op(EVERYONE, 200)}),
    "alert-read": Route("alert", {"post": Op(EVERYONE, 200)}),
    "alert-feedback": Route("alert", {"post": Op(EVERYONE, 200, lambda w: {"useful": True})}),
    "playbook-list": Route(
        None,
        {
            "get": Op(EVERYONE, 200),
            "post": Op(
                ADMINS,
                201,
                lambda w: {"name": "New", "trigger": "renewal_within", "trigger_params": {"days": 30}},
            ),
        },
    ),
    "playbook-detail": Route(
        "playbook", {"get": Op(EVERYONE, 200), "patch": Op(ADMINS, 200, lambda w: {"description": "x"})}
    ),
    # A dry run is a configuration tool (a POST on the admins' playbooks); it writes nothing.
    "playbook-dry-run": Route("playbook", {"post": Op(ADMINS, 200)}),
    # --- reports --------------------------------------------------------------------------
    "api-report-renewals": Route(None, {"get": Op(MANAGERS, 200)}),
    "api-report-portfolio": Route(None, {"get": Op(MANAGERS, 200)}),
    "api-report-renewal-forecast": Route(None, {"get": Op(MANAGERS, 200)}),
    "api-report-value": Route(None, {"get": Op(EVERYONE, 200)}),
    "api-report-rfm": Route(None, {"get": Op(EVERYONE, 200)}),
    "api-report-lifecycle": Route(None, {"get": Op(EVERYONE, 200)}),
    "api-report-voice": Route(None, {"get": Op(EVERYONE, 200)}),
    "api-report-churn": Route(None, {"get": Op(EVERYONE, 200)}),
    # --- pages ----------------------------------------------------------------------------
    "home": Route(None, {"get": Op(EVERYONE, 200)}, page=True),
    "account": Route("account", {"get": Op(EVERYONE, 200)}, page=True),
    "milestone-complete": Route("account", {"post": Op(EVERYONE, 302)}, page=True),
    "touchpoint-add": Route(
        "account",
        {"post": Op(EVERYONE, 302, lambda w: {"kind": "call", "occurred_at": _today(), "summary": "hi"})},
        page=True,
    ),
    "task-add": Route(
        "account",
        {"post": Op(EVERYONE, 302, lambda w: {"title": "New", "due_date": _today(3), "priority": "normal"})},
        page=True,
    ),
    "override-set": Route(
        "account",
        {"post": Op(EVERYONE, 302, lambda w: {"band": "red", "reason": "r", "expires_on": _today(5)})},
        page=True,
    ),
    "override-lift": Route("account", {"post": Op(EVERYONE, 302)}, page=True),
    "tasks": Route(None, {"get": Op(EVERYONE, 200)}, page=True),
    "task-complete": Route("task", {"post": Op(EVERYONE, 302)}, page=True),
    "task-snooze": Route("task", {"post": Op(EVERYONE, 302, lambda w: {"days": 3})}, page=True),
    "alerts": Route(None, {"get": Op(EVERYONE, 200)}, page=True),
    # Reading and judging an alert is its recipient's (the team A CSM who owns the account).
    "alert-read-page": Route(
        "alert", {"post": Op(EVERYONE, 302, not_theirs={"manager_same", "admin"})}, page=True
    ),
    "alert-judge": Route(
        "alert",
        {"post": Op(EVERYONE, 302, lambda w: {"useful": "yes"}, not_theirs={"manager_same", "admin"})},
        page=True,
    ),
    "renewals": Route(None, {"get": Op(MANAGERS, 200)}, page=True),
    "portfolio": Route(None, {"get": Op(MANAGERS, 200)}, page=True),
    "value": Route(None, {"get": Op(EVERYONE, 200)}, page=True),
    "voice": Route(None, {"get": Op(EVERYONE, 200)}, page=True),
    "churn": Route(None, {"get": Op(EVERYONE, 200)}, page=True),
    "journeys": Route(None, {"get": Op(EVERYONE, 200)}, page=True),
    "backtest": Route(None, {"get": Op(MANAGERS, 200)}, page=True),
    "ops-pipeline": Route(None, {"get": Op(ADMINS, 200)}, page=True),
    # Admin-only exports: the role is checked before the lookup, so anyone else gets a 403 for
    # any id (which says nothing about whether it exists).
    "ops-export-account": Route("account", {"get": Op(ADMINS, 200)}, page=True),
    "ops-export-contact": Route("contact", {"get": Op(ADMINS, 200)}, page=True),
}

# Both the pages and the API name a route "alert-read"; the page's is keyed apart above.
PAGE_ALIASES = {("alert-read", False): "alert-read-page"}
ADMIN_ONLY_BEFORE_LOOKUP = {"ops-export-account", "ops-export-contact"}


def _walk(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern


def _is_api(path: str) -> bool:
    return path.startswith("api/")


def _key(route: str, pattern: URLPattern) -> str:
    return PAGE_ALIASES.get((pattern.name, _is_api(route)), pattern.name)


def resolved_routes() -> dict[str, tuple[str, URLPattern]]:
    """Every named route but Django admin's (staff only, its own permission system)."""
    routes = {}
    for route, pattern in _walk(get_resolver().url_patterns):
        if route.startswith("admin/"):
            continue
        assert pattern.name, f"route {route!r} has no name, so the matrix cannot cover it"
        routes[_key(route, pattern)] = (route, pattern)
    return routes


def api_methods(pattern: URLPattern) -> set[str]:
    """The methods an API view answers, from the view itself."""
    callback = pattern.callback
    allowed = set(getattr(callback, "cls", getattr(callback, "view_class", None)).http_method_names)
    actions = getattr(callback, "actions", None)
    if actions:
        methods = set(actions)
    else:
        cls = callback.view_class
        methods = {m for m in cls.http_method_names if hasattr(cls, m)}
    return methods & allowed - {"options", "head"}


def test_every_route_is_in_the_matrix():
    routes = resolved_routes()
    missing = set(routes) - set(MATRIX) - set(NOT_IN_MATRIX)
    assert not missing, f"routes not covered by the authorization matrix: {sorted(missing)}"
    stale = (set(MATRIX) | set(NOT_IN_MATRIX)) - set(routes)
    assert not stale, f"the matrix names routes that no longer exist: {sorted(stale)}"
    for name, spec in MATRIX.items():
        route, pattern = routes[name]
        assert spec.page == (not _is_api(route)), name
        if not spec.page:
            assert api_methods(pattern) == set(spec.ops), (name, api_methods(pattern), set(spec.ops))


# --- one cell of the matrix -----------------------------------------------------------------


def _path(name: str, w, target_of_team) -> str:
    route, _ = resolved_routes()[name]
    spec = MATRIX[name]
    obj = None
    if spec.target in {"account", "contact", "task", "alert"}:
        obj = getattr(target_of_team, spec.target)
    elif spec.target == "scorecard":
        obj = w.scorecard
    elif spec.target == "playbook":
        obj = w.playbook
    path = "/" + route
    # Fill the route's parameters from the object.
    if obj is not None:
        values = {
            "pk": obj.pk,
            "account_id": obj.pk,
            "external_id": getattr(obj, "external_id", None),
            "key": "kickoff-call",
        }
        path = path.replace("(?P<pk>[^/.]+)", str(obj.pk)).replace("^", "").replace("$", "")
        for name_, value in values.items():
            for conv in ("int", "str", "slug", "path"):
                path = path.replace(f"<{conv}:{name_}>", str(value))
    else:
        path = path.replace("^", "").replace("$", "")
    assert "<" not in path and "(" not in path, path
    return path


COUNTED = (
    Account, Contact, Event, Ticket, SurveyResponse, Touchpoint, Task, Alert, Override, StageChange,
    Scorecard, Playbook, AuditEntry,
)  # fmt: skip


def fingerprint() -> tuple:
    """What a refused request must leave as it was."""
    counts = " , ".join(f'(SELECT count(*) FROM "{model._meta.db_table}")' for model in COUNTED)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {counts}")
        row = cursor.fetchone()
    return (
        row,
        tuple(Account.objects.order_by("pk").values_list("name", "owner_id", "team_id", "health_band")),
        tuple(Milestone.objects.order_by("pk").values_list("status", flat=True)),
        tuple(Task.objects.order_by("pk").values_list("status", "due_date")),
        tuple(Alert.objects.order_by("pk").values_list("read_at", "useful")),
        tuple(Scorecard.objects.order_by("pk").values_list("name", "status")),
        tuple(Playbook.objects.order_by("pk").values_list("name", "description")),
    )


def call(w, api, name: str, method: str, role: str, *, team: str = "a"):
    """Send one request as ``role`` to ``name`` about team ``team``'s object; answer and whether
    the database changed."""
    spec = MATRIX[name]
    op = spec.ops[method]
    user = w.users[role]
    client = api(None if spec.page else user)
    client.raise_request_exception = False
    if user is not None and spec.page:
        client.force_login(user)
    path = _path(name, w, w.a if team == "a" else w.b)
    body = op.body(w) if op.body else None
    kwargs: dict = {}
    if body is not None:
        if spec.page:
            kwargs = {"data": body, "format": "multipart"}
        else:
            kwargs = {"data": json.dumps(body), "content_type": "application/json"}
    before = fingerprint()
    response = getattr(client, method)(path, **kwargs)
    return response, fingerprint() != before


def expected_status(name: str, method: str, role: str) -> int:
    spec = MATRIX[name]
    op = spec.ops[method]
    if role == "anonymous":
        return 302 if spec.page else 401
    role_kind = role.split("_")[0]
    may = role_kind in op.roles
    foreign = role.endswith("_other")
    team_scoped = spec.target in {"account", "contact", "task", "alert"}
    if name in ADMIN_ONLY_BEFORE_LOOKUP and not may:
        return 403
    if foreign and team_scoped:
        return 404
    if not may:
        return 403
    if foreign and op.body_names_account:
        return 400
    if role in op.not_theirs:
        return 404
    return op.ok


CELLS = [(name, method) for name, spec in MATRIX.items() for method in spec.ops]


class Rollback(Exception):
    pass


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "method"), CELLS, ids=[f"{n}:{m}" for n, m in CELLS])
def test_authorization_matrix(security_world, api, name, method):
    w = security_world
    failures = []
    for role in ROLES:
        expected = expected_status(name, method, role)
        try:
            with transaction.atomic():
                response, changed = call(w, api, name, method, role)
                body = response.content.decode(errors="replace")
                if response.status_code != expected:
                    failures.append(f"{role}: {response.status_code} (expected {expected}) {body[:200]}")
                if expected >= 400 and changed:
                    failures.append(f"{role}: refused with {response.status_code} but wrote to the database")
                if role.endswith("_other") and ALPHA in body:
                    failures.append(f"{role}: team A's data in the answer: {body[:300]}")
                if role in {"csm_same", "manager_same"} and BRAVO in body:
                    failures.append(f"{role}: team B's data in the answer: {body[:300]}")
                if expected == 302 and role == "anonymous":
                    assert response["Location"].startswith("/login/"), response["Location"]
                raise Rollback
        except Rollback:
            pass
    assert not failures, f"{name} {method.upper()}:\n" + "\n".join(failures)


# --- lists, filters, search: no foreign row --------------------------------------------------

LIST_ROUTES = [name for name, spec in MATRIX.items() if "get" in spec.ops and spec.target is None]


def _hostile_queries(w) -> list[str]:
    """Filters and searches aimed at team B's objects (as team A would try them)."""
    b = w.b
    return [
        "",
        f"?account={b.account.pk}",
        f"?account__external_id={b.account.external_id}",
        f"?team={b.account.team_id}",
        f"?owner={b.account.owner_id}",
        f"?assignee={b.account.owner_id}",
        f"?recipient={b.account.owner_id}",
        f"?author={b.account.owner_id}",
        # A prefix of the marker: matches team B's names, but a page that echoes the query back
        # does not echo the marker itself.
        f"?search={BRAVO[:-1]}",
        f"?q={BRAVO[:-1]}",
        f"?email={b.contact.email}",
        f"?external_id={b.contact.external_id}",
        "?scope=team&show=all&status=done",
        "?mine=0&unread=0",
        "?page_size=500",
        "?days=3650",
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("name", LIST_ROUTES)
def test_no_list_filter_or_search_returns_a_foreign_row(security_world, api, client, name):
    w = security_world
    route = "/" + resolved_routes()[name][0].replace("^", "").replace("$", "")
    for role, marker_not_seen in (
        ("csm_same", BRAVO),
        ("manager_same", BRAVO),
        ("csm_other", ALPHA),
        ("manager_other", ALPHA),
    ):
        user = w.users[role]
        if MATRIX[name].page:
            client.force_login(user)
            http = client
        else:
            http = api(user)
        for query in _hostile_queries(w):
            response = http.get(route + query)
            assert response.status_code in (200, 400, 403), (role, query, response.status_code)
            assert marker_not_seen not in response.content.decode(), (role, name, query)


@pytest.mark.django_db
def test_each_role_sees_its_own_team_in_the_lists(security_world, api):
    """The negative checks above would pass on empty lists: prove the lists are not empty."""
    w = security_world
    for role, marker in (("csm_same", ALPHA), ("manager_same", ALPHA), ("csm_other", BRAVO)):
        client = api(w.users[role])
        for route in (
            "/api/v1/accounts/",
            "/api/v1/contacts/",
            "/api/v1/tickets/",
            "/api/v1/tasks/",
            "/api/v1/alerts/",
            "/api/v1/touchpoints/",
            "/api/v1/surveys/",
            "/api/v1/events/",
        ):
            response = client.get(route)
            assert response.status_code == 200
            assert marker in response.content.decode(), (role, route)
    admin = api(w.users["admin"])
    body = admin.get("/api/v1/accounts/").content.decode()
    assert ALPHA in body and BRAVO in body
