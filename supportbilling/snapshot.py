"""Reads that must all see the database at one moment."""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction


@contextmanager
def one_snapshot() -> Iterator[None]:
    """A transaction whose reads all see the database as of its first one (PostgreSQL's
    REPEATABLE READ): a page kept under a stamp is computed in the same snapshot as that
    stamp (docs/decisions.md, "Dashboard speed"). Inside a transaction already (the tests),
    that transaction as it is."""
    if connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield
