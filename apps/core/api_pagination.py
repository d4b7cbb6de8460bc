from __future__ import annotations

from typing import Any

from django.db import models
from django.utils.translation import gettext as _
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from apps.core.pagination import MAX_PAGE_SIZE, InvalidCursor, KeysetPage, keyset_page


class KeysetPagination(BasePagination):
    """DRF face of :func:`apps.core.pagination.keyset_page`: no OFFSET, no COUNT(*).

    The view's ``ordering`` attribute (default ``("-id",)``) sets the order; ``page_size``
    (1–200, default 50) sets the size.
    """

    cursor_query_param = "cursor"
    page_size_query_param = "page_size"
    default_page_size = 50

    def paginate_queryset(
        self, queryset: models.QuerySet[Any], request: Request, view: Any = None
    ) -> list[Any]:
        self.request = request
        ordering = tuple(getattr(view, "ordering", None) or ("-id",))
        size = self.default_page_size
        raw_size = request.query_params.get(self.page_size_query_param)
        if raw_size:
            try:
                size = int(raw_size)
            except ValueError:
                raise ValidationError({"page_size": [_("A whole number from 1 to 200.")]}) from None
            if not 1 <= size <= MAX_PAGE_SIZE:
                raise ValidationError({"page_size": [_("A whole number from 1 to 200.")]})
        try:
            self.page: KeysetPage[Any] = keyset_page(
                queryset,
                ordering=ordering,
                cursor=request.query_params.get(self.cursor_query_param) or None,
                size=size,
            )
        except InvalidCursor:
            raise ValidationError(
                {"cursor": [_("Not a cursor this list gave out; start again from the first page.")]}
            ) from None
        return self.page.items

    def _link(self, cursor: str | None) -> str | None:
        if cursor is None:
            return None
        url = self.request.build_absolute_uri()
        return replace_query_param(url, self.cursor_query_param, cursor)

    def get_paginated_response(self, data: Any) -> Response:
        return Response(
            {
                "next": self._link(self.page.next_cursor),
                "previous": self._link(self.page.previous_cursor),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["results"],
            "properties": {
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "previous": {"type": "string", "nullable": True, "format": "uri"},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "Opaque position from a previous page's next/previous link.",
                "schema": {"type": "string"},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": "Rows per page, 1–200 (default 50).",
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
            },
        ]

    def first_page_url(self) -> str:
        return remove_query_param(self.request.build_absolute_uri(), self.cursor_query_param)
