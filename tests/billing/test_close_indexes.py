"""The tables the month close writes carry no index that another index already covers: each
index costs every one of the close's rows an insert (docs/performance.md)."""

import pytest

# The month close writes items and terms for every billed subscription; the audit tables get
# its batch rows and the rest of the billing's history.
CLOSE_TABLES = (
    "billing_billableitem",
    "billing_billedterms",
    "billing_billingevent",
    "tickets_auditevent",
)
INDEXES = """
SELECT c.relname, i.indexrelid::regclass::text, string_to_array(i.indkey::text, ' '),
       i.indisunique, i.indpred IS NOT NULL
FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
WHERE c.relname = ANY(%s)
"""


@pytest.fixture
def indexes(postgres):
    with postgres.cursor() as cursor:
        cursor.execute(INDEXES, [list(CLOSE_TABLES)])
        return cursor.fetchall()


def test_no_index_repeats_the_leading_columns_of_another(indexes):
    repeated = [
        (table, name, covering)
        for table, name, columns, unique, partial in indexes
        if not unique and not partial
        for other_table, covering, other_columns, _, other_partial in indexes
        if other_table == table
        and covering != name
        and not other_partial
        and len(other_columns) > len(columns)
        and other_columns[: len(columns)] == columns
    ]
    assert repeated == []
    # Each table still has the indexes its readers use (a composite for each link).
    assert {table for table, *_ in indexes} == set(CLOSE_TABLES)


def test_the_items_creator_index_leaves_out_the_close_items(indexes):
    """The close's items have no creator, so they never enter that index."""
    partial = {name for table, name, _, _, partial in indexes if partial}
    assert "item_created_by" in partial
