"""The configuration the data migrations install, for transactional tests (their flush wipes it)."""

import importlib

from django.apps import apps

DATA_MIGRATIONS = (
    ("accounts.migrations.0002_roles", "create_roles"),
    ("journeys.migrations.0002_default_journeys", "create_journeys"),
    ("health.migrations.0002_default_scorecard", "create_default"),
    ("playbooks.migrations.0002_default_playbooks", "create_playbooks"),
)


def install_default_configuration() -> None:
    """Run the data migrations' functions again (each creates only what is missing)."""
    for module, function in DATA_MIGRATIONS:
        getattr(importlib.import_module(module), function)(apps, None)
