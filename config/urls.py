"""Top-level routes: the web UI, Django admin, the REST API and its docs."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import JsonResponse
from django.urls import include, path
from django.views import defaults
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from access.forms import LimitedAuthenticationForm


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def not_found(request, exception=None):
    """A path no route matches: JSON under /api/ (as the API's own 404s), the HTML page elsewhere."""
    if _is_api(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if _is_api(request):
        return JsonResponse({"detail": "Internal server error."}, status=500)
    return defaults.server_error(request)


handler404 = not_found
handler500 = server_error

admin.site.site_header = "Lifeline administration"
admin.site.site_title = "Lifeline admin"

urlpatterns = [
    path("", include("web.urls")),
    path("", include("web.insights_urls")),
    path("", include("ops.urls")),
    path(
        "login/",
        auth_views.LoginView.as_view(
            redirect_authenticated_user=True, authentication_form=LimitedAuthenticationForm
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("accounts.urls_api")),
    path("api/v1/", include("journeys.urls_api")),
    path("api/v1/", include("health.urls_api")),
    path("api/v1/", include("playbooks.urls_api")),
    path("api/v1/", include("reports.urls_api")),
    path("api/v1/", include("insights.urls_api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
]
