"""Routes of the ops app: health probes, metrics, the pipeline status page."""

from django.urls import path

from accounts.models import Account, Contact
from ops import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics, name="metrics"),
    path("ops/pipeline/", views.pipeline, name="ops-pipeline"),
    path("ops/export/account/<int:pk>/", views.export, {"model": Account}, name="ops-export-account"),
    path("ops/export/contact/<int:pk>/", views.export, {"model": Contact}, name="ops-export-contact"),
]
