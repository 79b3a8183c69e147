"""Credentials: hashed, expiring, revocable API tokens; rate-limit headers; sign-in attempts
limited in the database, also under 50 concurrent attempts."""

import datetime as dt
import threading
import time

import pytest
import requests
from django.core.cache import cache
from django.db import connection
from knox.models import AuthToken

from access.models import LoginAttempts
from access.throttling import AnonRateLimit, UserRateLimit
from tests.factories import UserFactory

TOKEN_URL = "/api/v1/auth/token/"
PASSWORD = "correct horse 42"
ACCOUNTS_URL = "/api/v1/accounts/"


@pytest.fixture
def alice(db):
    return UserFactory(username="alice", password=PASSWORD, role="csm")


def sign_in(api, username="alice", password=PASSWORD):
    return api().post(TOKEN_URL, {"username": username, "password": password}, format="json")


def with_token(api, key):
    client = api()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.mark.django_db
def test_a_token_is_stored_only_as_a_digest_and_expires(alice, api):
    response = sign_in(api)

    assert response.status_code == 200
    key = response.json()["token"]
    stored = AuthToken.objects.get(user=alice)
    assert key not in (stored.digest, stored.token_key) and stored.digest != key
    with connection.cursor() as cursor:  # the key is in no column of the table
        cursor.execute("SELECT count(*) FROM knox_authtoken WHERE digest = %s OR token_key = %s", [key, key])
        assert cursor.fetchone()[0] == 0
    assert dt.timedelta(days=89) < stored.expiry - stored.created <= dt.timedelta(days=90)
    assert with_token(api, key).get(ACCOUNTS_URL).status_code == 200


@pytest.mark.django_db
def test_an_expired_token_is_refused(alice, api):
    key = sign_in(api).json()["token"]
    AuthToken.objects.filter(user=alice).update(expiry=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    response = with_token(api, key).get(ACCOUNTS_URL)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.django_db
def test_the_owner_revokes_a_token_or_all_of_them(alice, api):
    first, second, third = (sign_in(api).json()["token"] for _ in range(3))

    assert with_token(api, first).post("/api/v1/auth/token/revoke/").json() == {"revoked": 1}
    assert with_token(api, first).get(ACCOUNTS_URL).status_code == 401
    assert with_token(api, second).get(ACCOUNTS_URL).status_code == 200

    response = with_token(api, second).post("/api/v1/auth/token/revoke/", {"all": True}, format="json")
    assert response.json() == {"revoked": 2}
    assert with_token(api, second).get(ACCOUNTS_URL).status_code == 401
    assert with_token(api, third).get(ACCOUNTS_URL).status_code == 401


@pytest.mark.django_db
def test_an_admin_revokes_anyones_token_in_the_admin(alice, api, admin_client):
    key = sign_in(api).json()["token"]
    token = AuthToken.objects.get(user=alice)

    page = admin_client.get("/admin/knox/authtoken/")
    assert page.status_code == 200 and "alice" in page.content.decode()
    response = admin_client.post(f"/admin/knox/authtoken/{token.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert with_token(api, key).get(ACCOUNTS_URL).status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize("header", [b"Token \xff\xfe", b"Token " + b"a" * 300, b"Token a b", b"Token"])
def test_a_malformed_token_is_a_401(alice, api, header):
    client = api()
    client.raise_request_exception = False
    response = client.get(ACCOUNTS_URL, HTTP_AUTHORIZATION=header.decode("latin-1"))
    assert response.status_code == 401


@pytest.mark.django_db
def test_old_plaintext_tokens_are_gone():
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('authtoken_token')")
        assert cursor.fetchone()[0] is None


# --- rate limits ----------------------------------------------------------------------------


@pytest.fixture
def tight_rates(monkeypatch):
    cache.clear()
    monkeypatch.setattr(UserRateLimit, "THROTTLE_RATES", {"user": "3/min", "anon": "2/min"})
    monkeypatch.setattr(AnonRateLimit, "THROTTLE_RATES", {"user": "3/min", "anon": "2/min"})
    yield
    cache.clear()


@pytest.mark.django_db
def test_answers_carry_rate_limit_headers_and_a_429_says_when_to_retry(alice, api, tight_rates):
    client = api(alice)
    remaining = []
    for _ in range(3):
        response = client.get(ACCOUNTS_URL)
        assert response.status_code == 200
        assert response["X-RateLimit-Limit"] == "3"
        assert 0 < int(response["X-RateLimit-Reset"]) <= 60
        remaining.append(int(response["X-RateLimit-Remaining"]))
    assert remaining == [2, 1, 0]

    refused = client.get(ACCOUNTS_URL)
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 60
    assert refused["X-RateLimit-Remaining"] == "0"


@pytest.mark.django_db
def test_anonymous_callers_are_limited_by_address(api, tight_rates):
    statuses = [
        api().post(TOKEN_URL, {"username": "x", "password": "y"}, format="json").status_code for _ in range(3)
    ]
    assert statuses == [400, 400, 429]


def test_default_rates_are_generous(settings):
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    assert rates == {"user": "20000/min", "anon": "1000/min"}


# --- sign-in attempts -----------------------------------------------------------------------


@pytest.mark.django_db
def test_sign_in_is_refused_past_the_limit_even_with_the_right_password(alice, api, settings):
    settings.LIFELINE_LOGIN_MAX_ATTEMPTS = 3
    assert [sign_in(api, password="wrong").status_code for _ in range(3)] == [400, 400, 400]

    locked = sign_in(api)
    assert locked.status_code == 429
    assert 0 < int(locked["Retry-After"]) <= 900
    assert AuthToken.objects.filter(user=alice).count() == 0

    # The window passes: the right password works again, and starts the count afresh.
    LoginAttempts.objects.filter(username="alice").update(
        window_started_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    )
    assert sign_in(api).status_code == 200
    assert not LoginAttempts.objects.filter(username="alice").exists()


@pytest.mark.django_db
def test_the_login_page_and_the_admin_share_the_limit(alice, client, settings):
    settings.LIFELINE_LOGIN_MAX_ATTEMPTS = 2
    for _ in range(2):
        client.post("/login/", {"username": "ALICE", "password": "wrong"})
    page = client.post("/login/", {"username": "alice", "password": PASSWORD})
    assert page.status_code == 200  # the form again, not a redirect into the app
    assert "Too many failed sign-ins" in page.content.decode()
    admin = client.post("/admin/login/", {"username": "alice", "password": PASSWORD})
    assert admin.status_code == 200
    assert LoginAttempts.objects.get(username="alice").attempts == 4


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_wrong_attempts_check_at_most_the_limit(live_server, settings):
    """Threads against a live server on PostgreSQL: the counter is atomic in the database."""
    settings.LIFELINE_LOGIN_MAX_ATTEMPTS = 5
    UserFactory(username="bob", password=PASSWORD)
    start = threading.Barrier(50)
    statuses = []

    def attempt():
        start.wait()
        for _ in range(20):  # a connection the test server's backlog refused never reached it
            try:
                response = requests.post(
                    live_server.url + TOKEN_URL, json={"username": "bob", "password": "wrong"}, timeout=60
                )
            except requests.ConnectionError:
                time.sleep(0.1)
            else:
                statuses.append(response.status_code)
                return

    threads = [threading.Thread(target=attempt) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(statuses) == 50
    assert statuses.count(400) == 5, statuses  # passwords checked: exactly the limit
    assert statuses.count(429) == 45
    assert LoginAttempts.objects.get(username="bob").attempts == 50
    right = requests.post(
        live_server.url + TOKEN_URL, json={"username": "bob", "password": PASSWORD}, timeout=60
    )
    assert right.status_code == 429


@pytest.mark.django_db
def test_revoking_with_a_bad_flag_is_a_400_naming_it(alice, api):
    """The fuzzer sent {"all": "{}"}: a 400 naming the field, and the token still works."""
    key = sign_in(api).json()["token"]
    response = with_token(api, key).post("/api/v1/auth/token/revoke/", {"all": "{}"}, format="json")
    assert response.status_code == 400
    assert "all" in response.json()
    assert with_token(api, key).get(ACCOUNTS_URL).status_code == 200
