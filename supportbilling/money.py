"""A currency's minor unit: Babel's precision (2 places for EUR, 0 for JPY). Amounts are whole
numbers of it (docs/decisions.md, "Currencies")."""

from decimal import Decimal

from babel.numbers import get_currency_precision


def minor_unit_places(currency: str) -> int:
    """The decimal places of ``currency``'s minor unit."""
    return get_currency_precision(currency)


def in_whole_minor_units(value: Decimal, currency: str) -> bool:
    """``value`` (finite) has no fraction of the currency's minor unit: 1002.50 JPY has."""
    exponent = value.normalize().as_tuple().exponent
    return isinstance(exponent, int) and exponent >= -minor_unit_places(currency)
