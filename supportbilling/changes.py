"""How a change is described in the audit trails: ``{"field": [old, new]}`` with plain values
(strings for decimals and dates, never floats), so that every app records changes alike."""

from decimal import Decimal
from typing import Any

CENT = Decimal("0.01")  # money and hours are stored with two decimal places


def value_text(value: Any) -> Any:
    """A field value as the audit stores it: booleans and None as they are, decimals with
    two places (as stored, so 12 and 12.00 are no change), anything else as a string."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, Decimal):
        return str(value.quantize(CENT))
    return str(value)


def fields_diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[Any]]:
    """``{"field": [old, new]}`` for every field of ``new`` whose value differs from ``old``."""
    return {
        key: [value_text(old.get(key)), value_text(new[key])]
        for key in new
        if value_text(old.get(key)) != value_text(new[key])
    }
