"""The database's cursors: Django's queries bound by PostgreSQL and prepared once they have
run five times on a connection (settings, ``DB_PREPARED``; docs/decisions.md, "Every query is
bound by the server and prepared once it has run five times")."""

from typing import Any, Self

import psycopg
from django.db.backends.postgresql.base import CursorMixin

# The most parameters PostgreSQL's protocol carries for one statement (a 16-bit count).
# Binding on the client has no such limit: marking a month's 100,000 items exported lists
# their ids in one statement.
SERVER_BOUND_PARAMS_MAX = 65_535


def _bound_on_client_if_long(cursor: psycopg.Cursor[Any], query: Any, params: Any) -> Any:
    """``(query, params)`` as given, or, past the protocol's limit, the query with its
    parameters written in by psycopg (as a client-side binding cursor does) and none left."""
    if params is not None and len(params) > SERVER_BOUND_PARAMS_MAX:
        return psycopg.ClientCursor(cursor.connection).mogrify(query, params), None
    return query, params


def _plan_result_changed(error: psycopg.errors.FeatureNotSupported) -> bool:
    """PostgreSQL's "cached plan must not change result type": what a prepared statement
    returns changed since it was prepared (a migration altered a column's type)."""
    return error.diag.source_function == "RevalidateCachedQuery"


class ServerBindingCursor(CursorMixin, psycopg.Cursor[Any]):
    """Django's cursor binding parameters on the server (settings ``DB_PREPARED``), so that
    psycopg prepares a statement once it has run five times; a statement with more
    parameters than the protocol carries is bound on the client instead.

    A prepared statement whose result changed (a migration run by another process altered a
    column's type) fails, and outside a transaction psycopg would keep it, failing on every
    run until the connection closes (psycopg#511): the connection's prepared statements are
    forgotten and the statement runs again, unprepared. In a transaction the error stands
    (PostgreSQL aborted it), and its rollback lets psycopg forget them."""

    def execute(
        self,
        query: Any,
        params: Any = None,
        *,
        prepare: bool | None = None,
        binary: bool | None = None,
    ) -> Self:
        query, params = _bound_on_client_if_long(self, query, params)
        try:
            return super().execute(query, params, prepare=prepare, binary=binary)
        except psycopg.errors.FeatureNotSupported as error:
            idle = self.connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            if not idle or not _plan_result_changed(error):
                # In a transaction the error stands (PostgreSQL aborted it); its rollback, or
                # the rollback to a savepoint, makes psycopg forget its prepared statements.
                raise
            # psycopg's cache of prepared statements has no public way to be emptied (the test
            # of this, tests/test_prepared.py, fails if that changes). Emptied, it deallocates
            # them all after its next statement: this one, run again unprepared.
            self.connection._prepared.clear()
            return super().execute(query, params, prepare=False, binary=binary)


class NamedServerBindingCursor(psycopg.ServerCursor[Any]):
    """The same for the named cursors of ``QuerySet.iterator()``."""

    def execute(
        self, query: Any, params: Any = None, *, binary: bool | None = None, **kwargs: Any
    ) -> Self:
        query, params = _bound_on_client_if_long(self, query, params)
        return super().execute(query, params, binary=binary, **kwargs)


def server_binding_cursors_use(*, connection: Any, **kwargs: Any) -> None:
    """``connection_created``: a PostgreSQL connection binding on the server gets the cursors
    above (Django's own would refuse a statement with more parameters)."""
    if connection.vendor == "postgresql" and connection.features.uses_server_side_binding:
        connection.connection.cursor_factory = ServerBindingCursor
        connection.connection.server_cursor_factory = NamedServerBindingCursor
