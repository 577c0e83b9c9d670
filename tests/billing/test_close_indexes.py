"""The tables the month close writes, and the time entries and tickets the helpdesk writes all
day, carry no index that another index already covers: each index costs every row written an
insert (docs/performance.md). Their links still each lead an index, for the reads by link and
for deleting what they point to."""

import pytest

# The month close writes items and terms for every billed subscription; the audit tables get
# its batch rows and the rest of the billing's history; every save of time writes an entry,
# and the tickets are written with every message.
CLOSE_TABLES = (
    "billing_billableitem",
    "billing_billedterms",
    "billing_billingevent",
    "tickets_auditevent",
    "tickets_timeentry",
    "tickets_ticket",
)
INDEXES = """
SELECT c.relname, i.indexrelid::regclass::text,
       ARRAY(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY AS k (attnum, position)
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
             ORDER BY k.position)::text[],
       i.indisunique, pg_get_expr(i.indpred, i.indrelid)
FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
WHERE c.relname = ANY(%s)
"""
LINKS = """
SELECT c.relname, a.attname
FROM pg_constraint f JOIN pg_class c ON c.oid = f.conrelid
JOIN pg_attribute a ON a.attrelid = f.conrelid AND a.attnum = f.conkey[1]
WHERE f.contype = 'f' AND c.relname = ANY(%s)
"""


@pytest.fixture
def indexes(postgres):
    with postgres.cursor() as cursor:
        cursor.execute(INDEXES, [list(CLOSE_TABLES)])
        return cursor.fetchall()


@pytest.fixture
def links(postgres):
    with postgres.cursor() as cursor:
        cursor.execute(LINKS, [list(CLOSE_TABLES)])
        return cursor.fetchall()


def test_no_index_repeats_the_leading_columns_of_another(indexes):
    repeated = [
        (table, name, covering)
        for table, name, columns, unique, predicate in indexes
        if not unique and predicate is None
        for other_table, covering, other_columns, _, other_predicate in indexes
        if other_table == table
        and covering != name
        and other_predicate is None
        and len(other_columns) > len(columns)
        and other_columns[: len(columns)] == columns
    ]
    assert repeated == []


def test_every_link_still_leads_an_index(indexes, links):
    leading = {(table, columns[0]) for table, _, columns, _, _ in indexes}
    assert links  # the tables have their links
    assert [link for link in links if tuple(link) not in leading] == []


def test_the_items_creator_index_leaves_out_the_close_items(indexes):
    """The close's items have no creator, so they never enter that index."""
    predicates = {name: predicate for _, name, _, _, predicate in indexes}
    assert predicates["item_created_by"] == "(created_by_id IS NOT NULL)"


def test_the_ticket_list_has_an_index_in_its_order(indexes):
    """The admin's ticket list reads its first page in the tickets' order (-updated_at, -id)
    from an index instead of sorting every ticket."""
    columns = {name: columns for _, name, columns, _, _ in indexes}
    assert columns["ticket_list_order"] == ["updated_at", "id"]
