"""/api/v1/ routes of the playbooks app."""

from rest_framework.routers import SimpleRouter

from playbooks import api

router = SimpleRouter()
router.register("tasks", api.TaskViewSet, basename="task")
router.register("alerts", api.AlertViewSet, basename="alert")
router.register("playbooks", api.PlaybookViewSet, basename="playbook")

urlpatterns = router.urls
