"""List pagination for the API: ``{"count", "next", "previous", "results"}``, in a stable order.

Two modes share the one answer shape (API.md):

- ``?page=N`` (the default): numbered pages, read with OFFSET. Page N makes the database step over
  N * page_size rows, so walking a million rows page by page is quadratic.
- ``?after=<id>`` (keyset): the ``page_size`` rows whose primary key is greater than ``id``, in
  primary key order, read as an index range (``WHERE id > %s ORDER BY id LIMIT n``): every page
  costs the same wherever it is in the list. ``next`` carries ``after=<last id of the page>`` (null
  on the last page); ``previous`` is always null (walk forward only); ``count`` stays the total of
  the filtered list. A walk started with ``after=0`` sees every row that existed when it started
  exactly once, even while rows are inserted or deleted meanwhile.
"""

import re

from django.db.models import F
from rest_framework import filters, pagination
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

# The largest primary key PostgreSQL's bigint can hold: a larger ``after`` matches no row.
MAX_KEY = 2**63 - 1
KEYSET_ORDERINGS = {"id", "pk"}


class PageNumberPagination(pagination.PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    after_query_param = "after"

    def paginate_queryset(self, queryset, request, view=None):
        self.after = keyset_after(request, self.after_query_param, self.page_query_param)
        if self.after is None:
            return super().paginate_queryset(queryset, request, view)
        return self.keyset_page(queryset, request)

    def keyset_page(self, queryset, request) -> list:
        """One page of rows after ``self.after`` by primary key: one row more than the page is read
        to know whether there is a next page, so a page costs the count and one range scan."""
        self.request = request
        self.display_page_controls = False
        size = self.get_page_size(request)
        self.count = queryset.count()
        rows = list(queryset.filter(pk__gt=self.after).order_by("pk")[: size + 1])
        self.next_after = row_key(rows[size - 1]) if len(rows) > size else None
        return rows[:size]

    def get_next_link(self):
        if self.after is None:
            return super().get_next_link()
        if self.next_after is None:
            return None
        url = remove_query_param(self.request.build_absolute_uri(), self.page_query_param)
        return replace_query_param(url, self.after_query_param, self.next_after)

    def get_previous_link(self):
        return super().get_previous_link() if self.after is None else None

    def get_paginated_response(self, data):
        if self.after is None:
            return super().get_paginated_response(data)
        return Response(
            {"count": self.count, "next": self.get_next_link(), "previous": None, "results": data}
        )

    def get_schema_operation_parameters(self, view):
        return [
            *super().get_schema_operation_parameters(view),
            {
                "name": self.after_query_param,
                "required": False,
                "in": "query",
                "description": (
                    "Keyset pagination: the rows whose id is greater than this one, in id order, "
                    "page_size of them; `next` carries the last id of the page and `previous` is "
                    "null. Every page costs the same, however far into the list (unlike `page`). "
                    "Not with `page`, nor with an `ordering` other than `id`."
                ),
                "schema": {"type": "integer", "minimum": 0},
            },
        ]


def keyset_after(request, after_param: str, page_param: str) -> int | None:
    """The ``after`` key of a keyset page (None for a numbered page), or a 400 naming ``after``:
    it must be a non-negative integer, without ``page`` and with no ordering but the key's."""
    raw = request.query_params.get(after_param)
    if raw is None:
        return None
    if not re.fullmatch(r"[0-9]+", raw):
        raise ValidationError({after_param: ["Must be a non-negative integer (an id)."]})
    if page_param in request.query_params:
        raise ValidationError({after_param: [f"Cannot be combined with {page_param}: use one or the other."]})
    ordering = request.query_params.get("ordering", "").strip()
    if ordering and {term.strip() for term in ordering.split(",")} - KEYSET_ORDERINGS:
        message = "Pages by id: cannot be combined with an ordering other than id."
        raise ValidationError({after_param: [message]})
    digits = raw.lstrip("0") or "0"
    return MAX_KEY if len(digits) > len(str(MAX_KEY)) else min(int(digits), MAX_KEY)


def row_key(row) -> int:
    """The primary key of a page row: a model instance, or a ``.values()`` dict holding ``id``."""
    return row["id"] if isinstance(row, dict) else row.pk


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
