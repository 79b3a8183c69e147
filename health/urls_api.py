"""/api/v1/ routes of the health app."""

urlpatterns: list = []
