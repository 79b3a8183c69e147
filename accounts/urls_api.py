"""/api/v1/ routes of the accounts app."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from access.api import ObtainTokenView, RevokeTokenView
from accounts import api

router = SimpleRouter()
router.register("accounts", api.AccountViewSet, basename="account")
router.register("contacts", api.ContactViewSet, basename="contact")

urlpatterns = [
    path("auth/token/", ObtainTokenView.as_view(), name="api-token"),
    path("auth/token/revoke/", RevokeTokenView.as_view(), name="api-token-revoke"),
    path(
        "accounts/by-external-id/<path:external_id>/",
        api.AccountByExternalIdView.as_view(),
        name="account-by-external-id",
    ),
    path("events/", api.EventView.as_view(), name="events"),
    path("tickets/", api.TicketView.as_view(), name="tickets"),
    path("surveys/", api.SurveyView.as_view(), name="surveys"),
    path("touchpoints/", api.TouchpointView.as_view(), name="touchpoints"),
    *router.urls,
]
