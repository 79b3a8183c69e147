"""List pagination for the API: ``{"count", "next", "previous", "results"}``, in a stable order."""

from django.db.models import F
from rest_framework import filters, pagination


class PageNumberPagination(pagination.PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class StableOrderingFilter(filters.OrderingFilter):
    """``?ordering=`` that pages can be walked by: rows without a value (an unscored account's
    ``health_score``) come last in either direction, as on PostgreSQL and SQLite alike, and the
    primary key breaks ties, so equal values neither repeat nor go missing across pages."""

    def filter_queryset(self, request, queryset, view):
        ordering = self.get_ordering(request, queryset, view)
        if not ordering:
            return queryset
        terms = [
            F(field[1:]).desc(nulls_last=True) if field.startswith("-") else F(field).asc(nulls_last=True)
            for field in ordering
        ]
        if not {field.lstrip("-") for field in ordering} & {"pk", "id"}:
            terms.append(F("pk").asc())
        return queryset.order_by(*terms)
