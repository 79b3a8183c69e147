"""The bench's urlconf: the project's URLs plus the floor of the API list, a plain Django view.

The floor runs through the same stack as ``/api/v1/accounts/`` (middleware, URL resolution,
session, the test client), so the ratio compares the API's own cost, not the test client's.
"""

from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.urls import path

from accounts.serializers import AccountSerializer
from accounts.visibility import visible_accounts
from config.urls import urlpatterns as project_urlpatterns

PAGE_SIZE = 50


@login_required
def plain_accounts(request):
    """The same first page as the API list: same scope, order and page size, ``.values()`` as JSON."""
    fields = AccountSerializer.Meta.fields
    rows = list(visible_accounts(request.user).order_by("name", "id").values(*fields)[:PAGE_SIZE])
    return JsonResponse({"results": rows}, json_dumps_params={"default": str})


urlpatterns = [*project_urlpatterns, path("bench-plain/accounts/", plain_accounts)]
