"""The ``data`` of each event: plain JSON with the API's field names and formats (amounts as
decimal strings with their currency, periods as YYYY-MM), docs/webhooks.md."""

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet

from billing.models import BILLABLE_ITEM_COLUMNS, BillableItem
from billing.selectors.finance import billable_item_totals
from supportbilling.periods import period_label

_ATTNAMES = {field.name: field.attname for field in BillableItem._meta.concrete_fields}
_ITEM_VALUES = tuple(_ATTNAMES[name] for name in BILLABLE_ITEM_COLUMNS)


def _text(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return period_label(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)  # Decimal: its exact digits


def item_data(items: QuerySet[BillableItem]) -> Iterable[dict[str, Any]]:
    """One dict per item, in id order; one query."""
    for row in items.order_by("pk").values_list(*_ITEM_VALUES):
        yield {name: _text(value) for name, value in zip(BILLABLE_ITEM_COLUMNS, row, strict=True)}


def period_closed_data(*, month: dt.date, closed_at: dt.datetime | None) -> dict[str, Any]:
    """The closed month, with its items' count and total per currency (void left out)."""
    totals = billable_item_totals(items=BillableItem.objects.filter(period=month))
    return {
        "period": period_label(month),
        "closed_at": _text(closed_at),
        "totals": [
            {"currency": row["currency"], "amount": str(row["total"].amount), "items": row["count"]}
            for row in totals
        ],
    }
