"""The API as an integrator uses it: the schema served by a running server passes
openapi-spec-validator, a client generated from it with openapi-python-client runs a month
(no hand-written request), and every response of that month, errors included, validates against
the schema with openapi-core."""

import csv
import datetime as dt
import importlib
import io
import subprocess
import sys
from pathlib import Path

import httpx
import openpyxl
import pytest
from openapi_core import Config, OpenAPI
from openapi_core.deserializing.media_types.util import plain_loads
from openapi_core.testing import MockRequest, MockResponse
from openapi_spec_validator import validate as validate_spec

from tests.factories import PASSWORD as FACTORY_PASSWORD
from tests.factories import AdminFactory, FinanceFactory, OperatorFactory

CLIENT_PACKAGE = "sbt_client"


@pytest.fixture
def served_schema(live_server) -> dict:
    response = httpx.get(f"{live_server.url}/api/schema/?format=json", timeout=30)
    assert response.status_code == 200
    return response.json()


@pytest.fixture
def generated(served_schema, tmp_path):
    """The client openapi-python-client generates from the served schema, imported from tmp."""
    schema_file = tmp_path / "schema.json"
    schema_file.write_text(httpx.Response(200, json=served_schema).text)
    tool = Path(sys.executable).parent / "openapi-python-client"
    result = subprocess.run(  # the generator works offline
        [
            str(tool),
            "generate",
            "--path",
            str(schema_file),
            "--meta",
            "none",
            "--output-path",
            str(tmp_path / CLIENT_PACKAGE),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": f"{tool.parent}:/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stdout, result.stdout  # no operation left out
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(CLIENT_PACKAGE)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.split(".")[0] == CLIENT_PACKAGE]:
            del sys.modules[name]


def test_served_schema_passes_the_openapi_spec_validator(served_schema):
    # then an integrator's validator takes it as it is
    validate_spec(served_schema)


class Recorder:
    """Every request and response the generated client sends and receives (httpx hooks)."""

    def __init__(self):
        self.exchanges: list[httpx.Response] = []

    def __call__(self, response: httpx.Response) -> None:
        response.read()
        self.exchanges.append(response)

    def errors_against(self, spec: dict) -> list[str]:
        # openapi-core decodes text/plain and text/html as text; CSV is text as well.
        config = Config(extra_media_type_deserializers={"text/csv": plain_loads})
        openapi = OpenAPI.from_dict(spec, config=config)
        errors = []
        for response in self.exchanges:
            request = response.request
            mock_request = MockRequest(
                host_url=f"{request.url.scheme}://{request.url.netloc.decode()}",
                method=request.method.lower(),
                path=request.url.path,
                args=dict(request.url.params),
                headers=dict(request.headers),
                data=request.content,
                content_type=request.headers.get("content-type", "application/json"),
            )
            mock_response = MockResponse(
                response.content,
                status_code=response.status_code,
                headers=dict(response.headers),
                content_type=response.headers.get("content-type", ""),
            )
            try:
                openapi.validate_response(mock_request, mock_response)
            except Exception as exc:
                errors.append(
                    f"{request.method} {request.url} -> {response.status_code}: {exc!r} "
                    f"{getattr(exc, '__cause__', '')!r} {response.content[:300]!r}"
                )
        return errors


def test_a_month_through_a_generated_client(
    live_server, generated, served_schema, time_machine, request
):
    from sbt_client import AuthenticatedClient, Client
    from sbt_client.api.v1 import (
        v1_auth_token_create,
        v1_billable_items_create,
        v1_billable_items_export_csv_retrieve,
        v1_billable_items_export_xlsx_retrieve,
        v1_billable_items_list,
        v1_billable_items_partial_update,
        v1_clients_create,
        v1_clients_users_create,
        v1_packages_create,
        v1_packages_retrieve,
        v1_rollups_create,
        v1_subscriptions_create,
        v1_subscriptions_partial_update,
        v1_subscriptions_usage_retrieve,
        v1_tickets_create,
        v1_tickets_retrieve,
        v1_tickets_time_entries_create,
        v1_tickets_time_entries_list,
    )
    from sbt_client.models import (
        AdjustmentRequest,
        BillableItemStatusEnum,
        BillableItemStatusRequest,
        BillingModeEnum,
        ClientRequest,
        ClientUserRequest,
        CurrencyEnum,
        Error,
        FieldErrors,
        InvoiceActionEnum,
        PackageRequest,
        PriceRequest,
        RollupRequest,
        SubscriptionRequest,
        SubscriptionStatusEnum,
        SubscriptionStatusRequest,
        TicketRequest,
        TimeEntryRequest,
        TokenRequestRequest,
    )

    time_machine.move_to(dt.datetime(2026, 10, 1, 8, 0, tzinfo=dt.UTC), tick=False)
    recorder = Recorder()
    hooks = {"event_hooks": {"response": [recorder]}}
    base = dict(base_url=live_server.url, raise_on_unexpected_status=True, httpx_args=hooks)
    opened = []
    # Closing the clients ends the server's keep-alive threads and their database connections.
    request.addfinalizer(lambda: [c.get_httpx_client().close() for c in opened])
    anonymous = Client(**base)
    opened.append(anonymous)
    AdminFactory(username="root")
    OperatorFactory(username="alice")
    FinanceFactory(username="fiona")

    def login(username, password=FACTORY_PASSWORD, prefix="Token"):
        answer = v1_auth_token_create.sync_detailed(
            client=anonymous, body=TokenRequestRequest(username=username, password=password)
        )
        assert answer.status_code == 200, answer.content
        opened.append(AuthenticatedClient(token=answer.parsed.token, prefix=prefix, **base))
        return opened[-1]

    october = RollupRequest(period="2026-10")

    def ok(answer, code=200):
        assert answer.status_code == code, answer.content
        return answer.parsed

    # given an administrator, an operator (whose client sends "Bearer") and finance
    admin = login("root")
    operator = login("alice", prefix="Bearer")
    finance = login("fiona")

    # when the administrator sets up a package, a client and its portal login
    gold = ok(
        v1_packages_create.sync_detailed(
            client=admin,
            body=PackageRequest(
                name="Gold",
                billing_mode=BillingModeEnum.RECURRING,
                included_hours="10.00",
                invoice_action=InvoiceActionEnum.NEXT_INVOICE,
                show_work_log=True,
                prices=[PriceRequest(currency=CurrencyEnum.EUR, fee="500.00", hourly_rate=60)],
            ),
        ),
        201,
    )
    assert (gold.included_hours, gold.prices[0].hourly_rate) == ("10.00", "60.00")
    acme = ok(
        v1_clients_create.sync_detailed(
            client=admin,
            body=ClientRequest(
                name="ACME Ltd", email="billing@acme.test", currency=CurrencyEnum.EUR
            ),
        ),
        201,
    )
    assert acme.active is True
    portal = ok(
        v1_clients_users_create.sync_detailed(
            acme.id,
            client=admin,
            body=ClientUserRequest(username="jane", password="a-long-Passphrase-7"),
        ),
        201,
    )
    assert portal.email == ""
    jane = login("jane", password="a-long-Passphrase-7")

    # and the operator subscribes the client and logs time in October
    subscription = ok(
        v1_subscriptions_create.sync_detailed(
            client=operator, body=SubscriptionRequest(client=acme.id, package=gold.id)
        ),
        201,
    )
    assert subscription.start_date == dt.date(2026, 10, 1)
    time_machine.move_to(dt.datetime(2026, 10, 30, 17, 0, tzinfo=dt.UTC), tick=False)
    ticket = ok(
        v1_tickets_create.sync_detailed(
            client=operator,
            body=TicketRequest(client=acme.id, subscription=subscription.id, subject="Mail down"),
        ),
        201,
    )
    for hours, day in (("8.00", 6), (4.25, 20)):
        ok(
            v1_tickets_time_entries_create.sync_detailed(
                ticket.id,
                client=operator,
                body=TimeEntryRequest(hours=hours, work_date=dt.date(2026, 10, day), note="work"),
            ),
            201,
        )
    assert ok(v1_tickets_retrieve.sync_detailed(ticket.id, client=jane)).hours_logged == "12.25"
    entries = ok(v1_tickets_time_entries_list.sync_detailed(ticket.id, client=jane))
    assert [e.hours for e in entries.results] == ["8.00", "4.25"]
    usage = ok(
        v1_subscriptions_usage_retrieve.sync_detailed(
            subscription.id, client=jane, period="2026-10"
        )
    )
    assert (usage.overtime_hours, usage.overtime_amount, usage.closed) == ("2.25", "135.00", False)

    # and errors come as the schema says: 400, 401, 403, 404
    refused = ok(
        v1_tickets_time_entries_create.sync_detailed(
            ticket.id, client=operator, body=TimeEntryRequest(hours="0.10")
        ),
        400,
    )
    assert isinstance(refused, FieldErrors) and refused["hours"]
    suspended = v1_subscriptions_partial_update.sync_detailed(
        subscription.id,
        client=admin,
        body=SubscriptionStatusRequest(status=SubscriptionStatusEnum.SUSPENDED),
    )
    assert ok(suspended).status == SubscriptionStatusEnum.SUSPENDED
    ok(
        v1_subscriptions_partial_update.sync_detailed(
            subscription.id,
            client=admin,
            body=SubscriptionStatusRequest(status=SubscriptionStatusEnum.ACTIVE),
        )
    )
    assert isinstance(ok(v1_packages_retrieve.sync_detailed(gold.id, client=anonymous), 401), Error)
    assert isinstance(
        ok(v1_rollups_create.sync_detailed(client=operator, body=october), 403),
        Error,
    )
    missing = v1_packages_retrieve.sync_detailed(gold.id + 999, client=admin)
    assert isinstance(ok(missing, 404), Error)
    early = ok(v1_rollups_create.sync_detailed(client=finance, body=october), 400)
    assert early.detail

    # when finance closes October in November
    time_machine.move_to(dt.datetime(2026, 11, 1, 0, 5, tzinfo=dt.UTC), tick=False)
    closed = ok(v1_rollups_create.sync_detailed(client=finance, body=october), 201)
    assert (closed.period, closed.closed, closed.items_created) == ("2026-10", True, 2)

    # then the fee and the overtime are billed, and an adjustment corrects them
    items = ok(v1_billable_items_list.sync_detailed(client=finance, period="2026-10"))
    assert sorted((i.kind.value, i.amount) for i in items.results) == [
        ("fee", "500.00"),
        ("overtime", "135.00"),
    ]
    credit = ok(
        v1_billable_items_create.sync_detailed(
            client=finance,
            body=AdjustmentRequest(
                client=acme.id,
                subscription=subscription.id,
                period="2026-10",
                amount="-35.00",
                description="Goodwill",
            ),
        ),
        201,
    )
    assert (credit.kind.value, credit.amount, credit.currency) == ("adjustment", "-35.00", "EUR")
    exported = ok(
        v1_billable_items_partial_update.sync_detailed(
            credit.id,
            client=finance,
            body=BillableItemStatusRequest(status=BillableItemStatusEnum.EXPORTED),
        )
    )
    assert exported.status == BillableItemStatusEnum.EXPORTED

    # and the month downloads as CSV and as XLSX with the three items
    text = ok(v1_billable_items_export_csv_retrieve.sync_detailed(client=finance, period="2026-10"))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert sorted(r["amount"] for r in rows) == ["-35.00", "135.00", "500.00"]
    workbook = ok(
        v1_billable_items_export_xlsx_retrieve.sync_detailed(client=finance, period="2026-10")
    )
    sheet = openpyxl.load_workbook(workbook.payload, read_only=True).active
    assert len(list(sheet.rows)) == 4  # a header and three items

    # and every response of the month, errors included, is what the schema describes
    assert len(recorder.exchanges) >= 25
    codes = {r.status_code for r in recorder.exchanges}
    assert {200, 201, 400, 401, 403, 404} <= codes
    assert recorder.errors_against(served_schema) == []
