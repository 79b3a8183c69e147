from django.urls import path

from reports.api import PortfolioReportView, RenewalForecastReportView, RenewalsReportView

urlpatterns = [
    path("reports/renewals/", RenewalsReportView.as_view(), name="api-report-renewals"),
    path("reports/portfolio/", PortfolioReportView.as_view(), name="api-report-portfolio"),
    path(
        "reports/renewal-forecast/", RenewalForecastReportView.as_view(), name="api-report-renewal-forecast"
    ),
]
