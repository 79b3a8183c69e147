"""The API against a fuzzer and hostile input (API.md: Authentication and errors).

1. Schemathesis generates requests for every operation under /api/v1/ from the OpenAPI schema
   the app serves at /api/schema/, sends each with the token of a team A CSM (and each read again
   with the token of the team B manager), and checks: never a 5xx, status codes, content types and bodies
   as the schema declares them, and nothing of the other team in any answer.
2. Hypothesis property tests of event ingestion: a batch with bad rows is refused whole with an
   error per bad row; a good batch is stored exactly, and the daily rollup is a GROUP BY of it.

Examples are derandomized (the same cases on every run) and bounded per operation.
"""

import datetime as dt
import json
from decimal import Decimal

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from django.db.models import Count, Sum
from django.db.models.functions import Coalesce, TruncDate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.ingestion import ingest_events
from accounts.models import Account, Contact, Event, EventDaily, SurveyResponse, Ticket, Touchpoint
from config.wsgi import application
from tests.conftest import token_for
from tests.factories import AccountFactory, ContactFactory
from tests.support.properties import PROPERTY_SETTINGS

schema = schemathesis.openapi.from_wsgi("/api/schema/", application).include(path_regex=r"^/api/v1/")
# The coverage phase's boundary values stay; its calls with undeclared methods (405s) are
# skipped, to keep the whole fuzz near two minutes.
schema.config.phases.coverage.unexpected_methods = set()

CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
]

# Team B's account carries strings no generator will come up with by chance.
SECRET_EXTERNAL_ID = "team-b-secret-7f3a9c"
SECRET_NAME = "Globex Hidden Holdings 7f3a9c"
SECRET_EMAIL = "spy-7f3a9c@globex.example"
# ... and team A's, for the team B caller.
SECRET_A_NAME = "Alpha Quiet Works 2e5d81"
SECRET_A_EMAIL = "quiet-2e5d81@alpha.example"

FUZZ_SETTINGS = settings(
    max_examples=10,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)


@pytest.fixture
def in_test_transaction():
    """Requests go through the real WSGI handler, whose request_started/finished signals close
    "old" connections: that would drop the test's transaction (and its data) mid-test."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_world(world, in_test_transaction):
    """Accounts of both teams with something of each kind on them; the team A CSM's token."""
    now = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
    acme = AccountFactory(external_id="acme", name="Acme", owner=world.csm_a, team=world.team_a)
    AccountFactory(external_id="initech", name="Initech", owner=world.csm_a2, team=world.team_a)
    secret = AccountFactory(
        external_id=SECRET_EXTERNAL_ID, name=SECRET_NAME, owner=world.csm_b, team=world.team_b
    )
    quiet = AccountFactory(external_id="quiet-a", name=SECRET_A_NAME, owner=world.csm_a, team=world.team_a)
    for account, email in ((acme, "pat@acme.example"), (secret, SECRET_EMAIL), (quiet, SECRET_A_EMAIL)):
        contact = ContactFactory(account=account, email=email, external_id=f"c-{account.external_id}")
        ingest_events(  # through ingestion, so that the rollup matches
            raw_rows=[
                {
                    "account": account.external_id,
                    "name": "login",
                    "occurred_at": now.isoformat(),
                    "value": "1.50",
                    "contact": email,
                    "idempotency_key": f"k-{account.external_id}",
                }
            ],
            accounts=Account.objects.all(),
        )
        Ticket.objects.create(account=account, external_id=f"t-{account.external_id}", opened_at=now)
        SurveyResponse.objects.create(account=account, contact=contact, kind="nps", score=9, responded_at=now)
        Touchpoint.objects.create(account=account, author=world.csm_a, kind="call", occurred_at=now)
    return {
        "token": token_for(world.csm_a),
        "token_b": token_for(world.manager_b),
        "acme": acme,
        "secret": secret,
    }


def assert_nothing_of_team_b(response) -> None:
    body = response.text
    for secret in (SECRET_EXTERNAL_ID, SECRET_NAME, SECRET_EMAIL):
        assert secret not in body, f"team B's {secret!r} leaked to a team A CSM: {body[:500]}"


def assert_nothing_of_team_a(response) -> None:
    body = response.text
    for secret in (SECRET_A_NAME, SECRET_A_EMAIL):
        assert secret not in body, f"team A's {secret!r} leaked to the team B manager: {body[:500]}"


@schema.parametrize()
@FUZZ_SETTINGS
@pytest.mark.django_db
def test_api_conforms_to_its_schema(case, fuzz_world):
    response = case.call_and_validate(
        headers={"Authorization": f"Token {fuzz_world['token']}"}, checks=CHECKS
    )
    assert_nothing_of_team_b(response)
    if case.method.upper() == "GET":  # reads are where another team's rows could show
        response = case.call_and_validate(
            headers={"Authorization": f"Token {fuzz_world['token_b']}"}, checks=CHECKS
        )
        assert_nothing_of_team_a(response)


# --- hostile input, by hand -----------------------------------------------------------------

NOW = "2026-01-01T00:00:00Z"
HUGE = 10**30


def event(**fields):
    return [{"account": "acme", "name": "login", "occurred_at": NOW, **fields}]


HOSTILE_REQUESTS = [
    # NUL and undecodable bytes in paths and filters
    ("get", "/api/v1/accounts/by-external-id/a%00b/", None),
    ("put", "/api/v1/accounts/by-external-id/a%00b/", {"name": "x"}),
    ("put", "/api/v1/accounts/by-external-id/%ED%A0%80/", {"name": "x"}),
    ("get", "/api/v1/accounts/%ED%A0%80/", None),
    ("get", "/api/v1/accounts/0.5/", None),
    ("get", "/api/v1/accounts/?search=a%00b&segment=%00&stage=%00", None),
    ("get", "/api/v1/accounts/?search=%ED%A0%80", None),
    ("get", "/api/v1/contacts/?email=a%00b&external_id=%00", None),
    ("get", "/api/v1/events/?account__external_id=a%00b&name=%00", None),
    # numbers out of every range
    ("get", f"/api/v1/accounts/{HUGE}/", None),
    ("get", f"/api/v1/accounts/?owner={HUGE}&team={HUGE}", None),
    ("get", f"/api/v1/accounts/?page={HUGE}&page_size={HUGE}", None),
    ("get", "/api/v1/accounts/?page=-1&page_size=-1&ordering=-nope,owner__password", None),
    ("get", f"/api/v1/contacts/{HUGE}/", None),
    ("get", f"/api/v1/events/?account={HUGE}", None),
    ("get", f"/api/v1/touchpoints/?author={HUGE}", None),
    ("get", "/api/v1/accounts/?renewal_before=9999-99-99&renewal_after=99999-01-01", None),
    ("get", "/api/v1/events/?occurred_at__gte=99999-01-01T00:00:00Z", None),
    # hostile ingestion rows
    ("post", "/api/v1/events/", event(account=2**70)),
    ("post", "/api/v1/events/", event(value="1e999999999")),
    ("post", "/api/v1/events/", event(value="-1E-999999999")),
    ("post", "/api/v1/events/", event(value=1e308)),
    ("post", "/api/v1/events/", event(value="sNaN")),
    ("post", "/api/v1/events/", event(occurred_at="0001-01-01T00:00:00+14:00")),
    ("post", "/api/v1/events/", event(occurred_at="2026-01-01T00:00:00+99:00")),
    ("post", "/api/v1/events/", event(occurred_at="2026-01-01T00:00:00-18:46")),
    ("get", "/api/v1/events/?occurred_at__lt=3816-03-12T08:16:31-18:46", None),
    ("get", "/api/v1/events/?occurred_at__gte=0001-01-01T00:00:00%2B14:00", None),
    ("post", "/api/v1/events/", event(name="x\ud800")),
    ("post", "/api/v1/events/", event(properties={"a": "\udfff"})),
    ("post", "/api/v1/events/", event(contact="a\x00@x.com")),
    ("post", "/api/v1/events/", [None, 1, "x", []]),
    ("post", "/api/v1/events/", "not a list"),
    ("post", "/api/v1/tickets/", [{"account": "acme", "external_id": "t", "closed_at": NOW}]),
    ("post", "/api/v1/tickets/", 5),
    ("post", "/api/v1/surveys/", {}),
    (
        "post",
        "/api/v1/surveys/",
        [{"account": "acme", "kind": "nps", "score": "9" * 5000, "responded_at": NOW}],
    ),
    (
        "post",
        "/api/v1/touchpoints/",
        [{"account": "acme", "kind": "call", "occurred_at": NOW, "summary": "\x00"}],
    ),
    ("post", "/api/v1/contacts/", {"account": "acme\ud800", "name": "x"}),
    ("post", "/api/v1/contacts/", {"account": 2**70, "name": "x"}),
    ("post", "/api/v1/contacts/", {"account": ["acme"]}),
    ("post", "/api/v1/auth/token/", {"username": "a\ud800", "password": "x"}),
    ("post", "/api/v1/auth/token/", []),
    ("patch", "/api/v1/accounts/{acme}/", {"arr": "1e999999999"}),
    ("patch", "/api/v1/accounts/{acme}/", {"arr": "NaN", "owner": 2**70, "team": 2**70}),
    ("patch", "/api/v1/accounts/{acme}/", {"name": "x\x00"}),
    ("patch", "/api/v1/accounts/{acme}/", "x"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "url", "body"), HOSTILE_REQUESTS)
def test_hostile_input_is_never_a_server_error(api, fuzz_world, method, url, body):
    client = api()
    client.credentials(HTTP_AUTHORIZATION=f"Token {fuzz_world['token']}")
    client.raise_request_exception = False
    url = url.replace("{acme}", str(fuzz_world["acme"].pk))
    kwargs = {} if body is None else {"data": json.dumps(body), "content_type": "application/json"}
    response = getattr(client, method)(url, **kwargs)
    assert response.status_code < 500, response.content[:300]
    assert response["Content-Type"] == "application/json"
    assert_nothing_of_team_b(response)


@pytest.mark.django_db
def test_team_b_is_invisible_to_a_team_a_csm(api, fuzz_world, world):
    client = api(world.csm_a)
    secret = fuzz_world["secret"]
    contact = secret.contacts.get()
    stored = Event.objects.count(), Ticket.objects.count(), SurveyResponse.objects.count()

    detail = f"/api/v1/accounts/{secret.pk}/"
    assert client.get(detail).status_code == 404
    assert client.patch(detail, {"name": "Mine"}, format="json").status_code == 404
    assert client.put(detail, {"external_id": "x", "name": "Mine"}, format="json").status_code == 404
    assert client.delete(detail).status_code == 404
    by_external_id = f"/api/v1/accounts/by-external-id/{SECRET_EXTERNAL_ID}/"
    assert client.put(by_external_id, {"name": "Mine"}, format="json").status_code == 404
    assert client.get(f"/api/v1/contacts/{contact.pk}/").status_code == 404
    assert client.patch(f"/api/v1/contacts/{contact.pk}/", {"name": "x"}, format="json").status_code == 404
    assert client.delete(f"/api/v1/contacts/{contact.pk}/").status_code == 404
    for url in (
        f"/api/v1/accounts/?team={world.team_b.pk}",
        f"/api/v1/accounts/?owner={world.csm_b.pk}",
        f"/api/v1/accounts/?search={SECRET_EXTERNAL_ID}",
        f"/api/v1/contacts/?account={secret.pk}",
        f"/api/v1/contacts/?email={SECRET_EMAIL}",
        f"/api/v1/events/?account={secret.pk}",
        f"/api/v1/events/?account__external_id={SECRET_EXTERNAL_ID}",
        f"/api/v1/tickets/?account={secret.pk}",
        f"/api/v1/surveys/?account={secret.pk}",
        f"/api/v1/touchpoints/?account={secret.pk}",
    ):
        response = client.get(url)
        assert response.status_code in (200, 400), url
        assert response.status_code == 400 or response.json()["count"] == 0, url

    # Writing to team B's account: unknown account, nothing stored.
    for url, body in (
        ("/api/v1/events/", [{"account": secret.pk, "name": "x", "occurred_at": NOW}]),
        ("/api/v1/tickets/", [{"account": SECRET_EXTERNAL_ID, "external_id": "new", "opened_at": NOW}]),
        (
            "/api/v1/tickets/",
            [{"account": "acme", "external_id": "t-" + SECRET_EXTERNAL_ID, "opened_at": NOW}],
        ),
        ("/api/v1/surveys/", [{"account": secret.pk, "kind": "nps", "score": 1, "responded_at": NOW}]),
        ("/api/v1/touchpoints/", {"account": SECRET_EXTERNAL_ID, "kind": "call", "occurred_at": NOW}),
        ("/api/v1/contacts/", {"account": secret.pk, "name": "x"}),
    ):
        response = client.post(url, body, format="json")
        assert response.status_code == 400, (url, response.content)
        assert SECRET_NAME not in response.content.decode()
    assert (Event.objects.count(), Ticket.objects.count(), SurveyResponse.objects.count()) == stored
    assert Ticket.objects.get(external_id="t-" + SECRET_EXTERNAL_ID).account == secret


# --- ingestion properties -------------------------------------------------------------------


EVENT_NAMES = ["login", "export", "report_viewed", "Ünïcode ✓"]
times = st.datetimes(
    min_value=dt.datetime(2024, 1, 1),
    max_value=dt.datetime(2026, 1, 31),
    timezones=st.sampled_from(
        [dt.UTC, dt.timezone(dt.timedelta(hours=14)), dt.timezone(dt.timedelta(hours=-12, minutes=-30))]
    ),
)
values = st.none() | st.decimals(
    min_value=Decimal("-999999999999.99"), max_value=Decimal("999999999999.99"), places=2
).map(str)


printable = st.text(st.characters(blacklist_categories=["Cc", "Cs"]), max_size=5)


@st.composite
def valid_events(draw, accounts=("acme", "initech")):
    row = {
        "account": draw(st.sampled_from(accounts)),
        "name": draw(st.sampled_from(EVENT_NAMES)),
        "occurred_at": draw(times).isoformat(),
    }
    for field, strategy in (
        ("value", values),
        (
            "contact",
            st.sampled_from(["pat@acme.example", "PAT@Acme.Example", "crm-contact-7", "new@x.example"]),
        ),
        ("properties", st.dictionaries(printable, st.integers() | printable, max_size=3)),
        ("idempotency_key", st.text("abc", min_size=1, max_size=2)),
    ):
        if draw(st.booleans()):
            row[field] = draw(strategy)
    return row


# Each bad row comes with the field its error must name (None: the row as a whole).
BAD_ROWS = st.one_of(
    st.sampled_from([5, "row", None, [], True]).map(lambda raw: (raw, None)),
    st.builds(dict, account=st.just("acme"), occurred_at=st.just(NOW)).map(lambda r: (r, "name")),
    st.sampled_from([7, [], {}, True, "x" * 101]).map(
        lambda name: ({"account": "acme", "name": name, "occurred_at": NOW}, "name")
    ),
    st.sampled_from(
        [
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-01-01T00:00:00",
            "2026-02-30T00:00:00Z",
            1735689600,
            "2999-01-01T00:00:00Z",
            "1900-01-01T00:00:00Z",
            "",
        ]
    ).map(lambda when: ({"account": "acme", "name": "login", "occurred_at": when}, "occurred_at")),
    st.sampled_from(["nope", SECRET_EXTERNAL_ID, 0, -1, 2**70, False, 1.5]).map(
        lambda ref: ({"account": ref, "name": "login", "occurred_at": NOW}, "account")
    ),
    st.sampled_from(["abc", "1.234", "1e999999999", "NaN", "1e20", [1], True, {}]).map(
        lambda value: ({"account": "acme", "name": "login", "occurred_at": NOW, "value": value}, "value")
    ),
    st.sampled_from([[1], "x", 5, "[1]", {"a": "\x00"}]).map(
        lambda props: (
            {"account": "acme", "name": "login", "occurred_at": NOW, "properties": props},
            "properties",
        )
    ),
    st.sampled_from(["a@", "@", 5, "x" * 300]).map(
        lambda contact: (
            {"account": "acme", "name": "login", "occurred_at": NOW, "contact": contact},
            "contact",
        )
    ),
    st.sampled_from([5, ["k"], "k" * 256]).map(
        lambda key: (
            {"account": "acme", "name": "login", "occurred_at": NOW, "idempotency_key": key},
            "idempotency_key",
        )
    ),
)


@st.composite
def malformed_batches(draw):
    good = draw(st.lists(valid_events(), max_size=8))
    bad = draw(st.lists(BAD_ROWS, min_size=1, max_size=5))
    batch = [(row, "ok") for row in good] + list(bad)
    return draw(st.permutations(batch))


def rollup_rows():
    return set(EventDaily.objects.values_list("account_id", "name", "day", "count", "value_sum"))


def group_by_of_events():
    return set(
        Event.objects.annotate(day=TruncDate("occurred_at", tzinfo=dt.UTC))
        .values("account_id", "name", "day")
        .annotate(n=Count("id"), total=Coalesce(Sum("value"), Decimal(0)))
        .values_list("account_id", "name", "day", "n", "total")
    )


@pytest.fixture
def ingest(fuzz_world, api, world):
    Contact.objects.create(account=fuzz_world["acme"], external_id="crm-contact-7")
    client = api(world.csm_a)
    return lambda batch: client.post("/api/v1/events/", json.dumps(batch), content_type="application/json")


@pytest.mark.django_db
@PROPERTY_SETTINGS
@given(batch=malformed_batches())
def test_a_batch_with_bad_rows_is_refused_whole(ingest, batch):
    before = Event.objects.count(), rollup_rows(), Contact.objects.count()
    response = ingest([row for row, _ in batch])

    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    bad_indexes = {index for index, (_, field) in enumerate(batch) if field != "ok"}
    assert {e["index"] for e in errors} == bad_indexes
    for index, (_, field) in enumerate(batch):
        if field != "ok":
            assert field in {e["field"] for e in errors if e["index"] == index}, (index, errors)
    assert (Event.objects.count(), rollup_rows(), Contact.objects.count()) == before


@pytest.mark.django_db
@PROPERTY_SETTINGS
@given(batch=st.lists(valid_events(), min_size=1, max_size=25))
def test_a_valid_batch_is_stored_exactly_and_rolled_up(ingest, batch):
    accounts = dict(Account.objects.values_list("external_id", "id"))
    keys_before = set(
        Event.objects.exclude(idempotency_key=None).values_list("account_id", "idempotency_key")
    )
    count_before = Event.objects.count()
    new_keys = {
        (accounts[row["account"]], row["idempotency_key"]) for row in batch if "idempotency_key" in row
    } - keys_before
    expected = sum(1 for row in batch if "idempotency_key" not in row) + len(new_keys)

    response = ingest(batch)

    assert response.status_code == 201, response.content
    assert response.json() == {"accepted": expected, "duplicates": len(batch) - expected}
    assert Event.objects.count() == count_before + expected
    assert rollup_rows() == group_by_of_events()
