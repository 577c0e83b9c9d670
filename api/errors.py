"""One place that turns the services' refusals into API errors, and JSON numbers into Decimal.

Every 400 has one shape (docs/api.md): ``{"field": ["message", ...]}`` for a field, where a
nested field is named by its path (``"prices[0].fee"``), and ``{"detail": "message"}`` for the
request as a whole. Services raise django.core.exceptions.ValidationError, serializers DRF's;
both end here.
"""

import json
from decimal import Decimal

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import status
from rest_framework.exceptions import ParseError
from rest_framework.exceptions import ValidationError as DrfValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.settings import api_settings

from packages.selectors import MissingPrice


def api_exception_handler(exc, context):
    # Imported here: rest_framework.views reads DEFAULT_PARSER_CLASSES (this module) when it is
    # first imported, so importing it at the top is a cycle in processes that load this module
    # first (a Celery worker).
    from rest_framework.views import exception_handler as drf_exception_handler

    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        return Response(field_errors(detail), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, MissingPrice):
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, DrfValidationError):
        response.data = field_errors(response.data)
    return response


def field_errors(detail: object) -> dict[str, object]:
    """``{"path": ["message", ...]}`` from a (nested) error structure; the messages about the
    request as a whole become ``{"detail": "message"}``."""
    errors: dict[str, list[str]] = {}
    _collect(errors, "", detail)
    whole = errors.pop("", [])
    result: dict[str, object] = dict(errors)
    if whole:
        result["detail"] = " ".join(whole)
    return result


_WHOLE = {NON_FIELD_ERRORS, api_settings.NON_FIELD_ERRORS_KEY, "detail"}


def _collect(errors: dict[str, list[str]], path: str, detail: object) -> None:
    if isinstance(detail, dict):
        for key, value in detail.items():
            key = str(key)
            if key in _WHOLE:
                _collect(errors, path, value)
            elif key.isdigit():
                _collect(errors, f"{path}[{key}]", value)
            else:
                _collect(errors, f"{path}.{key}" if path else key, value)
    elif isinstance(detail, list):
        if all(isinstance(item, str) for item in detail):
            errors.setdefault(path, []).extend(detail)
        else:
            for index, item in enumerate(detail):
                if item:  # a list serializer answers {} for the rows that are right
                    _collect(errors, f"{path}[{index}]", item)
    else:
        errors.setdefault(path, []).append(str(detail))


class DecimalJSONParser(JSONParser):
    """JSON numbers become Decimal (``1.25`` stays exactly 1.25): no float anywhere."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", "utf-8")
        try:
            text = stream.read().decode(encoding)
            return json.loads(text, parse_float=_json_decimal, parse_constant=_refuse_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
        except RecursionError as exc:
            # The decoder recurses once per nested array or object.
            raise ParseError("JSON parse error - nested too deeply.") from exc


# No figure of the API comes near this; 1E+999999999 as an object's id took minutes of CPU
# and half a gigabyte to turn into an int.
_JSON_EXPONENT_MAX = 100


def _json_decimal(text: str) -> Decimal:
    number = Decimal(text)
    if abs(number.adjusted()) > _JSON_EXPONENT_MAX:
        raise ValueError(f"{text[:40]} is too large or too small a number")
    return number


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number")


class ApiPagination(PageNumberPagination):
    """50 per page, ``?page_size=`` up to 500."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_paginated_response_schema(self, schema):
        paginated = super().get_paginated_response_schema(schema)
        # The four keys are always sent; "next" and "previous" are null at the ends.
        paginated["required"] = ["count", "next", "previous", "results"]
        return paginated
