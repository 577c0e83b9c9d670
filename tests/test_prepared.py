"""Queries bound by the server and prepared (settings ``DB_PREPARED``) keep working past the
65,535 parameters PostgreSQL's protocol carries for one statement, and after a migration run
by another process changed what a prepared query returns (supportbilling.prepared)."""

import datetime as dt

import psycopg
import pytest

from billing.models import BillableItem
from supportbilling.prepared import SERVER_BOUND_PARAMS_MAX
from tests.factories import BillableItemFactory


@pytest.mark.parametrize("read", ["list", "iterator"])
def test_a_filter_on_more_ids_than_the_protocol_carries_finds_its_rows(postgres, read):
    # given two items, and 70,000 ids of which theirs are two
    items = BillableItemFactory.create_batch(2)
    ids = [item.pk for item in items] + [-n for n in range(1, 70_001)]
    assert len(ids) > SERVER_BOUND_PARAMS_MAX
    # when the items with those ids are read, at once or through a named cursor in chunks
    wanted = BillableItem.objects.filter(pk__in=ids).order_by("pk")
    found = list(wanted) if read == "list" else list(wanted.iterator(chunk_size=1))
    # then both are found
    assert found == items


@pytest.fixture
def scratch_table(postgres, transactional_db):
    """A table of one integer column holding 1, committed, dropped after the test; and a way
    to change that column's type from another connection, as a migration run by another
    process does."""
    with postgres.cursor() as cursor:
        cursor.execute("CREATE TABLE prepared_scratch (x integer)")
        cursor.execute("INSERT INTO prepared_scratch VALUES (1)")

    def column_type_change(to: str) -> dt.datetime:
        """The column's type changed; when that was done."""
        params = {**postgres.get_connection_params(), "autocommit": True}
        with psycopg.connect(**params) as other:
            other.execute(f"ALTER TABLE prepared_scratch ALTER COLUMN x TYPE {to}")
            return other.execute("SELECT clock_timestamp()").fetchone()[0]

    yield column_type_change
    with postgres.cursor() as cursor:
        cursor.execute("DROP TABLE prepared_scratch")


SCRATCH_READ = "SELECT x FROM prepared_scratch WHERE x > %s"


def _scratch_read(connection) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(SCRATCH_READ, [0])
        return cursor.fetchall()


def test_a_prepared_query_runs_after_another_process_changed_its_column_type(
    postgres, scratch_table
):
    # given a query run six times, so prepared
    for _ in range(6):
        assert _scratch_read(postgres) == [(1,)]
    assert len(_prepared_at(postgres)) == 1
    # when a migration run by another process changes the type of the column it returns
    changed_at = scratch_table("bigint")
    # then the query still answers, at once and later, and is prepared anew after five runs
    for _ in range(6):
        assert _scratch_read(postgres) == [(1,)]
    prepared_at = _prepared_at(postgres)
    assert len(prepared_at) == 1 and prepared_at[0] > changed_at


def _prepared_at(connection) -> list[dt.datetime]:
    """When the connection prepared the scratch table's read (once per statement)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT prepare_time FROM pg_prepared_statements WHERE statement = %s",
            [SCRATCH_READ.replace("%s", "$1")],
        )
        return [row[0] for row in cursor.fetchall()]
