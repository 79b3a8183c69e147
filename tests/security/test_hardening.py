"""Production settings pass Django's deploy check; weak passwords are refused."""

import os
import secrets
import subprocess
import sys

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError

from tests.support.processes import ROOT

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "lifeline.example.com",
}


def deploy_check(**env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "LIFELINE_HTTPS", "SECRET_KEY")}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_the_deploy_check():
    result = deploy_check(**PRODUCTION)
    assert result.returncode == 0, result.stderr + result.stdout


@pytest.mark.parametrize(
    ("change", "warning"),
    [
        ({"LIFELINE_HTTPS": "false"}, "security.W008"),  # no HTTPS redirect, no secure cookies, no HSTS
        ({"DEBUG": "true"}, "security.W018"),
        ({"SECRET_KEY": "short"}, "security.W009"),
    ],
)
def test_the_deploy_check_fails_on_an_insecure_setting(change, warning):
    result = deploy_check(**{**PRODUCTION, **change})
    assert result.returncode != 0
    assert warning in result.stderr + result.stdout


def test_debug_off_without_a_secret_key_refuses_to_start():
    environment = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**environment, "DEBUG": "false"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


@pytest.mark.django_db
@pytest.mark.parametrize("password", ["short1!", "password123", "1234567890123", "csm_alice_2026"])
def test_weak_passwords_are_refused(password):
    from tests.factories import UserFactory

    user = UserFactory(username="csm_alice_2026", email="alice@example.com")
    with pytest.raises(ValidationError):
        validate_password(password, user=user)


@pytest.mark.django_db
def test_a_strong_password_is_accepted():
    validate_password("correct horse battery staple 42")


def test_pages_are_not_framed_and_cookies_are_http_only(settings):
    assert settings.X_FRAME_OPTIONS == "DENY"
    assert settings.SESSION_COOKIE_HTTPONLY
