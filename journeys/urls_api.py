"""/api/v1/ routes of the journeys app."""

urlpatterns: list = []
