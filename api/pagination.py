"""Cursor pagination: stable pages while rows are added, and no COUNT(*) over a large table."""

from __future__ import annotations

from rest_framework.pagination import CursorPagination


class Cursor(CursorPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500
    ordering = "-id"
