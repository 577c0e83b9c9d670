"""Queries bound by the server (settings ``DB_PREPARED``) keep working past the 65,535
parameters PostgreSQL's protocol carries for one statement (supportbilling.prepared)."""

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
