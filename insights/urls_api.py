from django.urls import path

from insights.api import (
    ChurnReportView,
    LifecycleReportView,
    RfmReportView,
    ValueReportView,
    VoiceReportView,
)

urlpatterns = [
    path("reports/value/", ValueReportView.as_view(), name="api-report-value"),
    path("reports/rfm/", RfmReportView.as_view(), name="api-report-rfm"),
    path("reports/lifecycle/", LifecycleReportView.as_view(), name="api-report-lifecycle"),
    path("reports/voice/", VoiceReportView.as_view(), name="api-report-voice"),
    path("reports/churn/", ChurnReportView.as_view(), name="api-report-churn"),
]
