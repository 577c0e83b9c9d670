"""Queries prepared on their first run: the portal's and the ticket page's stamps, the same
query on every view, which PostgreSQL took longer to plan than to run (docs/decisions.md,
"Portal history", "The stamps are prepared statements"). Django's own queries are prepared
once they have run five times on a connection (settings, ``DB_PREPARED``)."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Self

import psycopg
from django.db import connection
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper


class _PreparingCursor(psycopg.Cursor[Any]):
    """psycopg's own cursor (parameters bound by the server) preparing each statement it runs,
    where Django's cursors wait until it has run five times. On a connection without prepared
    statements (``prepare_threshold`` None: settings ``DB_PREPARED=off``, for a pooler that
    cannot keep them) psycopg plans the statement each time."""

    def execute(
        self,
        query: Any,
        params: Any = None,
        *,
        prepare: bool | None = True,
        binary: bool | None = None,
    ) -> Self:
        return super().execute(query, params, prepare=prepare, binary=binary)


@contextmanager
def prepared_cursor() -> Iterator[CursorWrapper]:
    """A cursor of the default PostgreSQL connection whose statements are prepared, wrapped as
    Django wraps its own, so that its queries are logged and counted like any other."""
    connection.ensure_connection()
    wrapper = CursorDebugWrapper if connection.queries_logged else CursorWrapper
    with wrapper(_PreparingCursor(connection.connection), connection) as cursor:
        yield cursor
