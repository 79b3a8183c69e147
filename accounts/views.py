"""Server-rendered pages of the accounts app."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.visibility import visible_accounts


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """My book: the accounts in the user's scope, renewals first."""
    accounts = visible_accounts(request.user).select_related("owner", "team").order_by("renewal_date", "name")
    query = request.GET.get("q", "").strip()
    if query:
        accounts = accounts.filter(name__icontains=query) | accounts.filter(domain__icontains=query)
    page = Paginator(accounts, 50).get_page(request.GET.get("page"))
    return render(request, "accounts/home.html", {"page": page, "query": query})
