"""/api/v1/ routes of the journeys app."""

from django.urls import path

from journeys import api

urlpatterns = [
    path("accounts/<int:account_id>/journey/", api.AccountJourneyView.as_view(), name="account-journey"),
    path(
        "accounts/<int:account_id>/milestones/<str:key>/complete/",
        api.CompleteMilestoneView.as_view(),
        name="account-milestone-complete",
    ),
    path("accounts/<int:account_id>/stage/", api.MoveStageView.as_view(), name="account-stage"),
]
