from django.apps import AppConfig


class AccessConfig(AppConfig):
    """Credentials and request limits: hashed API tokens, login attempt limits, rate-limit headers."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "access"
