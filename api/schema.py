"""How the OpenAPI schema at /api/schema/ describes the API, so that a client generated from it
works (docs/api.md, "The schema"): what the server always sends is required, every error
response is listed with its body, decimals are what the server accepts, ids are integers."""

from decimal import Decimal
from typing import Any, ClassVar

from django.conf import settings
from django.utils import translation
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent

# 400: {"field": ["message", ...]} and/or {"detail": "message"} (api.errors).
FIELD_ERRORS_SCHEMA = {
    "type": "object",
    "description": (
        'What was refused: {"field": ["message", ...]} for a field (a nested one is named '
        'like "prices[0].fee"), {"detail": "message"} for the request as a whole.'
    ),
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
}
ERROR_SCHEMA = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
ERROR_DESCRIPTIONS = {
    "400": "Refused: a field or the request as a whole (nothing was changed).",
    "401": "No valid credentials.",
    "403": "The caller's role may not do this.",
    "404": "Not found, or not the caller's to see (also a page past the end of a list).",
    "429": "Too many failed sign-ins: locked out for a while.",
}
LIST_PARAMETERS = {"page", "page_size"}


class ApiAutoSchema(AutoSchema):
    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        anonymous = not self.view.get_authenticators()
        if anonymous:
            operation["security"] = []  # no credentials needed (nor sent)
        queries = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        codes = []
        if self.method != "GET" or queries - LIST_PARAMETERS:
            codes.append("400")
        if anonymous:
            codes.append("429")
        else:
            codes += ["401", "403"]
            if "{" in path or "page" in queries:
                codes.append("404")
        for code in codes:
            operation["responses"].setdefault(code, self._error_response(code))
        return operation

    def _error_response(self, code: str) -> dict[str, Any]:
        name, schema = (
            ("FieldErrors", FIELD_ERRORS_SCHEMA) if code == "400" else ("Error", ERROR_SCHEMA)
        )
        component = ResolvedComponent(
            name=name, type=ResolvedComponent.SCHEMA, object=name, schema=schema
        )
        self.registry.register_on_missing(component)
        return {
            "description": ERROR_DESCRIPTIONS[code],
            "content": {"application/json": {"schema": component.ref}},
        }

    def _get_request_for_media_type(self, serializer, direction="request"):
        # A serializer marked ``whole_on_patch`` is read whole by its PATCH view: its required
        # fields stay required (drf-spectacular would describe it as partial).
        if self.method == "PATCH" and getattr(serializer, "whole_on_patch", False):
            self.method = "POST"
            try:
                return super()._get_request_for_media_type(serializer, direction)
            finally:
                self.method = "PATCH"
        return super()._get_request_for_media_type(serializer, direction)

    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        if direction == "response" and schema.get("properties"):
            # A serializer renders every readable field, every time.
            schema["required"] = sorted(schema["properties"])
        return schema

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if schema is not None and schema.get("format") == "decimal":
            schema = _decimal_schema(field, schema, direction)
        return schema


def _decimal_schema(field: Any, schema: dict[str, Any], direction: str) -> dict[str, Any]:
    """A decimal string without a minus sign when the field refuses negatives; in a request, a
    JSON number as well (the API's parser reads it exactly)."""
    minimum = getattr(field, "min_value", None)
    if minimum is None and getattr(field, "non_negative", False):
        minimum = Decimal("0")
    text: dict[str, Any] = {k: schema[k] for k in ("type", "format", "pattern") if k in schema}
    meta = {key: value for key, value in schema.items() if key not in text}
    if minimum is not None and minimum >= 0 and "pattern" in text:
        text["pattern"] = text["pattern"].replace("^-?", "^", 1)
    if direction != "request" or field.read_only:
        return {**text, **meta}
    # Decimals, never floats: the schema's renderers write them as plain JSON/YAML numbers.
    number: dict[str, Any] = {"type": "number"}
    if minimum is not None:
        number["minimum"] = Decimal(minimum)
    maximum = getattr(field, "max_value", None)
    if maximum is not None:
        number["maximum"] = Decimal(maximum)
    return {"oneOf": [text, number], **meta}


class TokenSchemeExtension(OpenApiAuthenticationExtension):
    target_class = "api.authentication.TokenOrBearerAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": (
                'The value is "Token " followed by the key that POST /api/v1/auth/token/ '
                'answers ("Token 9944b0..."); "Bearer " followed by the key is accepted too.'
            ),
        }


class KeptSchemaGenerator(SchemaGenerator):
    """The generator of ``/api/schema/``: the public schema in the site's language
    (``LANGUAGE_CODE``) is generated once per process and kept; it depends only on the code,
    which a deploy restarts (docs/performance.md, "The API schema"). Another language
    (``?lang=``) or a version is generated for its request only, so that no query string can
    grow what is kept."""

    _schemas: ClassVar[dict[str, dict[str, Any]]] = {}

    def get_schema(self, request: Any = None, public: bool = False) -> dict[str, Any]:
        language = translation.get_language()
        if not public or self.api_version is not None or language != settings.LANGUAGE_CODE:
            return super().get_schema(request=request, public=public)
        if language not in self._schemas:
            self._schemas[language] = super().get_schema(request=request, public=public)
        return self._schemas[language]
