"""Hypothesis settings shared by the property tests that run against the database."""

from hypothesis import HealthCheck, settings

# Derandomized and without an example database: the same examples on every run and machine, so a
# failure in CI reproduces locally. Function-scoped fixtures (the database) are reset by the tests.
PROPERTY_SETTINGS = settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
