# django-money ships py.typed but leaves MoneyField unannotated, so django-stubs' plugin
# types it as a plain DecimalField (reads Decimal, writes Decimal). It reads and writes Money:
# its descriptor (MoneyFieldProxy) replaces DecimalField's, so this stub derives from Field,
# whose value types are open, rather than from DecimalField, whose are Decimal.
# mypy reads this file instead of djmoney/models/fields.py; djmoney's other modules are its own.
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, TypeVar

from django.db import models
from django.db.models.expressions import Combinable
from django.utils.functional import _StrOrPromise
from djmoney.money import Money

_ST = TypeVar("_ST", contravariant=True)
_GT = TypeVar("_GT", covariant=True)

class MoneyFieldProxy:
    def __init__(self, field: MoneyField[Any, Any]) -> None: ...

class CurrencyField(models.CharField[_ST, _GT]): ...

class MoneyField(models.Field[_ST, _GT]):
    _pyi_private_set_type: Money | Combinable
    _pyi_private_get_type: Money
    _pyi_lookup_exact_type: Money | Decimal | int | str
    max_digits: int
    decimal_places: int
    default_currency: str | None
    currency_choices: Iterable[tuple[str, str]]
    currency_field_name: str | None
    def __init__(
        self,
        verbose_name: _StrOrPromise | None = None,
        name: str | None = None,
        max_digits: int | None = None,
        decimal_places: int = ...,
        default: Any = ...,
        default_currency: str | None = ...,
        currency_choices: Iterable[tuple[str, str]] = ...,
        currency_max_length: int = ...,
        currency_field_name: str | None = None,
        money_descriptor_class: type[MoneyFieldProxy] = ...,
        **kwargs: Any,
    ) -> None: ...
