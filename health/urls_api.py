"""/api/v1/ routes of the health app."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from health import api, backtest_api

router = SimpleRouter()
router.register("scorecards", api.ScorecardViewSet, basename="scorecard")

urlpatterns = [
    path("accounts/<int:pk>/health/", api.AccountHealthView.as_view(), name="account-health"),
    path(
        "accounts/<int:pk>/health/history/",
        api.AccountHealthHistoryView.as_view(),
        name="account-health-history",
    ),
    path(
        "accounts/<int:pk>/health/override/",
        api.AccountHealthOverrideView.as_view(),
        name="account-health-override",
    ),
    path("health/recompute/", api.RecomputeView.as_view(), name="health-recompute"),
    path(
        "scorecards/<int:pk>/backtest/",
        backtest_api.ScorecardBacktestView.as_view(),
        name="scorecard-backtest",
    ),
    path(
        "scorecards/<int:pk>/suggest-weights/",
        backtest_api.ScorecardSuggestWeightsView.as_view(),
        name="scorecard-suggest-weights",
    ),
    *router.urls,
]
