"""What the OpenAPI schema promises is what the server does: required fields on each side,
error responses and their one shape, integer ids, enums, decimals, the token scheme; and the
refusals that used to break those promises (deeply nested JSON, nested field errors)."""

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.authtoken.models import Token

from packages.models import Subscription
from tests.api.conftest import api_as
from tests.factories import PASSWORD, ClientFactory
from tickets.models import TicketMessage


@pytest.fixture
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def _component(schema, name):
    return schema["components"]["schemas"][name]


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_fields_the_server_always_sends_are_required_in_responses(schema):
    always_sent = {
        "Client": {"active", "email"},
        "ClientUser": {"email"},
        "Package": {"included_hours", "invoice_action", "show_work_log", "active"},
        "Subscription": {"start_date", "end_date", "status"},
        "Ticket": {"subscription", "status", "track_time", "priority"},
        "TimeEntry": {"work_date", "note"},
    }
    for name, fields in always_sent.items():
        component = _component(schema, name)
        assert set(component["properties"]) == set(component["required"]), name
        assert fields <= set(component["required"]), name
    for name in ("PaginatedTicketList", "PaginatedBillableItemList"):
        assert _component(schema, name)["required"] == ["count", "next", "previous", "results"]


def test_a_status_patch_declares_the_status_it_requires(schema, world):
    for path, component in (
        ("/api/v1/subscriptions/{id}/", "SubscriptionStatusRequest"),
        ("/api/v1/billable-items/{id}/", "BillableItemStatusRequest"),
    ):
        body = schema["paths"][path]["patch"]["requestBody"]
        assert body["required"] is True
        assert body["content"]["application/json"]["schema"]["$ref"].endswith(component)
        assert _component(schema, component)["required"] == ["status"]
    # as the server says when it is left out
    refused = api_as(world.users["administrator"]).patch(
        f"/api/v1/subscriptions/{world.subscription.pk}/", {}, format="json"
    )
    assert refused.status_code == 400
    assert refused.json() == {"status": ["This field is required."]}


def test_every_operation_lists_its_error_responses_with_their_bodies(schema):
    for path, method, operation in _operations(schema):
        responses = operation["responses"]
        expected = {"400", "429"} if path == "/api/v1/auth/token/" else {"401", "403"}
        if method != "get" or path.endswith(("/usage/", "/export/", "/csv/", "/xlsx/")):
            expected.add("400")  # a body or a query the server may refuse
        lists = ("/packages/", "/tickets/", "/billable-items/")
        if "{id}" in path or method == "get" and path.endswith(lists):
            expected.add("404")  # an object, or a page past the end of a list
        assert expected <= set(responses), (method, path, sorted(responses))
        for code in expected:
            body = responses[code]["content"]["application/json"]["schema"]["$ref"]
            assert body.endswith("FieldErrors" if code == "400" else "Error"), (path, code)
    field_errors = _component(schema, "FieldErrors")
    assert field_errors["properties"] == {"detail": {"type": "string"}}
    assert field_errors["additionalProperties"] == {"type": "array", "items": {"type": "string"}}
    assert _component(schema, "Error")["required"] == ["detail"]


def test_ids_are_integers_and_choices_are_enums(schema):
    for path, _method, operation in _operations(schema):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                assert parameter["schema"] == {"type": "integer"}, path
    usage = _component(schema, "Usage")["properties"]
    assert usage["billing_mode"] == {"$ref": "#/components/schemas/BillingModeEnum"}
    assert usage["currency"] == {"$ref": "#/components/schemas/CurrencyEnum"}
    currency = _component(schema, "BillableItem")["properties"]["currency"]
    assert currency["allOf"] == [{"$ref": "#/components/schemas/CurrencyEnum"}]


def test_decimals_say_what_the_server_accepts(schema):
    # a price is never negative; an adjustment may be
    price = _component(schema, "Price")["properties"]["fee"]
    assert price["pattern"].startswith("^\\d")
    assert _component(schema, "BillableItem")["properties"]["amount"]["pattern"].startswith("^-?")
    # and a request takes a decimal string or a JSON number
    fee = _component(schema, "PriceRequest")["properties"]["fee"]
    assert [option["type"] for option in fee["oneOf"]] == ["string", "number"]
    assert fee["oneOf"][1]["minimum"] == 0
    hours = _component(schema, "TimeEntryRequest")["properties"]["hours"]
    assert hours["oneOf"][1] == {"type": "number", "minimum": 0.25, "maximum": 24.0}


def test_the_token_endpoint_is_anonymous_and_the_scheme_says_token(schema):
    assert schema["paths"]["/api/v1/auth/token/"]["post"]["security"] == []
    scheme = schema["components"]["securitySchemes"]["tokenAuth"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "Authorization")
    assert '"Token "' in scheme["description"] and '"Bearer "' in scheme["description"]


def test_each_export_operation_has_one_media_type(schema):
    csv = schema["paths"]["/api/v1/billable-items/export/csv/"]["get"]["responses"]["200"]
    xlsx = schema["paths"]["/api/v1/billable-items/export/xlsx/"]["get"]["responses"]["200"]
    assert list(csv["content"]) == ["text/csv"]
    assert list(xlsx["content"]) == ["application/octet-stream"]
    assert xlsx["content"]["application/octet-stream"]["schema"]["format"] == "binary"


@pytest.mark.parametrize("prefix", ["Token", "Bearer", "bearer"])
def test_a_token_is_accepted_as_token_or_bearer(world, prefix):
    key = Token.objects.create(user=world.users["operator"]).key
    api = api_as(None)
    api.credentials(HTTP_AUTHORIZATION=f"{prefix} {key}")
    assert api.get("/api/v1/tickets/").status_code == 200


def test_another_scheme_is_401(world):
    key = Token.objects.create(user=world.users["operator"]).key
    api = api_as(None)
    api.credentials(HTTP_AUTHORIZATION=f"Basic {key}")
    response = api.get("/api/v1/tickets/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_a_wrong_nested_price_names_its_row_and_field(world):
    # given an administrator creating a package with a negative fee in its second price
    response = api_as(world.users["administrator"]).post(
        "/api/v1/packages/",
        {
            "name": "Silver",
            "billing_mode": "recurring",
            "prices": [
                {"currency": "EUR", "fee": "1.00", "hourly_rate": "1.00"},
                {"currency": "USD", "fee": "-1.00", "hourly_rate": "1.00"},
            ],
        },
        format="json",
    )
    # then the 400 is {"field": ["message"]}, the field named by its path
    assert response.status_code == 400
    assert response.json() == {
        "prices[1].fee": ["Ensure this value is greater than or equal to 0."]
    }


def test_a_username_and_password_refused_are_one_detail(world):
    response = api_as(None).post(
        "/api/v1/auth/token/", {"username": "alice", "password": PASSWORD + "x"}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "Unable to log in with provided credentials."}


DEEP = "[" * 5000


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/auth/token/"),
        ("post", "/api/v1/packages/"),
        ("post", "/api/v1/tickets/"),
        ("post", "/api/v1/rollups/"),
        ("patch", "/api/v1/time-entries/{w.entry.pk}/"),
        ("post", "/api/v1/billable-items/"),
    ],
)
def test_deeply_nested_json_is_a_400(world, method, path):
    api = api_as(world.users["administrator"])
    response = getattr(api, method)(
        path.format(w=world), data=DEEP, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "JSON parse error - nested too deeply."}


@pytest.mark.parametrize("number", ["1E+1000", "1e-1000", "-1E+999999999"])
def test_a_json_number_far_beyond_any_figure_is_a_400(world, number):
    # given an object's id as a number with a huge exponent (turned into an int, it took
    # minutes of CPU)
    api = api_as(world.users["administrator"])
    body = f'{{"client": {number}, "package": {world.package.pk}}}'
    # when it is sent, it is refused at once and nothing is written
    before = Subscription.objects.count()
    response = api.post("/api/v1/subscriptions/", data=body, content_type="application/json")
    assert response.status_code == 400
    assert "is too large or too small a number" in response.json()["detail"]
    assert Subscription.objects.count() == before


def test_a_ticket_without_a_body_opens_without_a_first_message(world, schema):
    # given the schema: the body is optional
    assert "body" not in _component(schema, "TicketRequest")["required"]
    client = ClientFactory(currency="EUR")
    # when an operator opens a ticket with no body
    response = api_as(world.users["operator"]).post(
        "/api/v1/tickets/", {"client": client.pk, "subject": "Printer"}, format="json"
    )
    # then it is open, without a message
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "open"
    assert not TicketMessage.objects.filter(ticket_id=response.json()["id"]).exists()


def test_a_ticket_with_an_empty_body_is_refused(world):
    response = api_as(world.users["operator"]).post(
        "/api/v1/tickets/",
        {"client": world.acme.pk, "subject": "Printer", "body": " "},
        format="json",
    )
    assert response.status_code == 400
    assert list(response.json()) == ["body"]
