"""Regression tests for what the authorization matrix and the fuzzer found."""

import pytest

from health.models import Measure, Scorecard


@pytest.mark.django_db
def test_scorecard_preview_lists_only_the_callers_accounts(world, api, account_a, account_b):
    """The preview used to list every account whose band would change, whatever the caller's scope."""
    draft = Scorecard.objects.create(
        name="All green", segment="", version=99, status=Scorecard.Status.DRAFT, red_below=0, green_from=0
    )
    Measure.objects.create(
        scorecard=draft,
        key="renewal",
        label="Renewal",
        metric="days_to_renewal",
        params={},
        weight=1,
        mapping={"type": "linear", "zero_at": 0, "full_at": 10000},
    )

    seen = {}
    for user in (world.csm_a, world.manager_b, world.admin):
        response = api(user).get(f"/api/v1/scorecards/{draft.pk}/preview/")
        assert response.status_code == 200
        seen[user.username] = {change["name"] for change in response.json()["changes"]}

    assert seen["csm_a"] == {account_a.name}
    assert seen["manager_b"] == {account_b.name}
    assert seen["admin"] == {account_a.name, account_b.name}
