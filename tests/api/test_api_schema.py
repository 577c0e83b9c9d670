"""The OpenAPI schema validates, and a bounded fuzz run generated from it (schemathesis, in
process against the WSGI app) finds no server error and no response that breaks the schema."""

import json

import pytest
import schemathesis
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, Phase, given, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

from api.schema import KeptSchemaGenerator
from billing.models import Dispute, ExportJob

EXAMPLES = 12  # per operation and mode: about a minute for the whole API


def test_schema_validates_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s.yml"))
    assert "/api/v1/billable-items/export/" in (tmp_path / "s.yml").read_text()


def test_schema_and_docs_are_served(client):
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200


def test_the_served_schema_is_generated_once_and_is_the_whole_schema(client, monkeypatch):
    generated = []
    generate = SchemaGenerator.get_schema

    def counted(self, *args, **kwargs):
        generated.append(self)
        return generate(self, *args, **kwargs)

    monkeypatch.setattr(SchemaGenerator, "get_schema", counted)
    monkeypatch.setattr(KeptSchemaGenerator, "_schemas", {})
    # when the schema is asked for in YAML, then twice in JSON
    yaml_answer = client.get("/api/schema/")
    json_answers = [client.get("/api/schema/?format=json") for _ in range(2)]
    # then it was generated once, and every answer states the whole schema
    assert len(generated) == 1
    assert yaml_answer["Content-Type"].startswith("application/vnd.oai.openapi")
    assert "/api/v1/billable-items/export/:" in yaml_answer.content.decode()
    fresh = OpenApiJsonRenderer().render(generate(SchemaGenerator(), request=None, public=True))
    assert [answer.json() for answer in json_answers] == [json.loads(fresh)] * 2
    # and another language or a version in the query string is generated for its request,
    # never kept: anyone's query strings cannot grow the process
    for query in ("?lang=de", "?lang=zz1", "?version=x1", "?lang=de"):
        assert client.get("/api/schema/" + query).status_code == 200
    assert len(generated) == 5
    assert list(KeptSchemaGenerator._schemas) == ["en"]


@pytest.fixture
def wsgi_app():
    """The real WSGI app, inside the test's transaction: Django would otherwise close the
    connection after each request (and with it the transaction the test runs in)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield get_wsgi_application()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _operations():
    schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
    return [result.ok() for result in schema.get_all_operations()]


def _existing_ids(world) -> dict[str, int]:
    return {
        "/api/v1/packages/": world.package.pk,
        "/api/v1/clients/": world.acme.pk,
        "/api/v1/subscriptions/": world.subscription.pk,
        "/api/v1/tickets/": world.ticket.pk,
        "/api/v1/time-entries/": world.entry.pk,
        "/api/v1/billable-items/": world.item.pk,
        "/api/v1/export-jobs/": ExportJob.objects.create(
            requested_by=world.users["finance"], period=world.item.period, format="csv"
        ).pk,
        "/api/v1/disputes/": Dispute.objects.create(
            client=world.acme,
            subscription=world.subscription,
            month=world.item.period,
            item=world.item,
            reason="Not ordered",
        ).pk,
    }


@pytest.mark.parametrize("role", ["administrator", "operator", "finance", "client"])
def test_fuzz_finds_no_server_error(world, wsgi_app, settings_override, role):
    # given the API as an administrator (who reaches every write), an operator and a finance
    # user (who reach their own writes and are refused the rest) or a client user
    token = Token.objects.create(user=world.users[role]).key
    operations = _operations()
    ids = _existing_ids(world)
    failures = []
    for operation in operations:
        path_ids = {}
        if "{id}" in operation.path:
            path_ids = {"id": ids[operation.path.split("{id}")[0]]}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            # valid input on existing objects; invalid input anywhere
            fixed = path_ids if mode == GenerationMode.POSITIVE and path_ids else None
            strategy = operation.as_strategy(generation_mode=mode, path_parameters=fixed)

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def run(case):
                response = case.call(app=wsgi_app, headers={"Authorization": f"Token {token}"})
                case.validate_response(
                    response, checks=[not_a_server_error, response_schema_conformance]
                )

            try:
                run()
            except Exception as exc:  # collect every operation's failure, then report all
                failures.append(f"{operation.method.upper()} {operation.path} ({mode}): {exc}")
    # then nothing answered 5xx or broke the schema
    assert not failures, "\n\n".join(failures)


@pytest.fixture
def settings_override(settings):
    settings.ALLOWED_HOSTS = ["*"]
    settings.DEBUG_PROPAGATE_EXCEPTIONS = False


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/packages/",
        "/api/v1/clients/",
        "/api/v1/clients/{w.acme.pk}/users/",
        "/api/v1/subscriptions/",
        "/api/v1/subscriptions/{w.subscription.pk}/",
        "/api/v1/subscriptions/{w.subscription.pk}/usage/",
        "/api/v1/tickets/",
        "/api/v1/tickets/{w.ticket.pk}/",
        "/api/v1/tickets/{w.ticket.pk}/time-entries/",
        "/api/v1/time-entries/{w.entry.pk}/",
        "/api/v1/billable-items/",
        "/api/v1/billable-items/{w.item.pk}/",
        "/api/v1/rollups/",
        "/api/v1/auth/token/",
    ],
)
def test_browsable_pages_and_options_answer(world, client, path, settings):
    # given an administrator in the browser
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    client.force_login(world.users["administrator"])
    url = path.format(w=world)
    # then the browsable page and OPTIONS answer without a server error
    assert client.get(url, HTTP_ACCEPT="text/html").status_code in (200, 405)
    assert client.options(url).status_code == 200
