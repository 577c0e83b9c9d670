"""One place that turns the services' refusals into API errors, and JSON numbers into Decimal.

Services raise django.core.exceptions.ValidationError; the API answers 400 with
``{"field": ["message"]}`` when the service named a field, else ``{"detail": "message"}``.
"""

import json
from decimal import Decimal

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import status
from rest_framework.exceptions import ParseError
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from billing.selectors import MissingPrice


def api_exception_handler(exc, context):
    # Imported here: rest_framework.views reads DEFAULT_PARSER_CLASSES (this module) when it is
    # first imported, so importing it at the top is a cycle in processes that load this module
    # first (a Celery worker).
    from rest_framework.views import exception_handler as drf_exception_handler

    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            errors = {
                ("detail" if field == NON_FIELD_ERRORS else field): messages
                for field, messages in exc.message_dict.items()
            }
            return Response(errors, status=status.HTTP_400_BAD_REQUEST)
        return Response({"detail": " ".join(exc.messages)}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, MissingPrice):
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    return drf_exception_handler(exc, context)


class DecimalJSONParser(JSONParser):
    """JSON numbers become Decimal (``1.25`` stays exactly 1.25): no float anywhere."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", "utf-8")
        try:
            text = stream.read().decode(encoding)
            return json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number")


class ApiPagination(PageNumberPagination):
    """50 per page, ``?page_size=`` up to 500."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
