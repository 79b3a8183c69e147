"""The value settings row, created with its defaults when missing."""

from insights.models import DEFAULT_VALUE_EVENTS, ValueSettings


def value_settings() -> ValueSettings:
    """The one settings row (pk 1); the data migration creates it, this recreates it if deleted."""
    settings, _ = ValueSettings.objects.get_or_create(pk=1, defaults={"value_events": DEFAULT_VALUE_EVENTS})
    return settings
