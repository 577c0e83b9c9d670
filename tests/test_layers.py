"""The apps are layers, imports point one way: customers -> packages -> tickets -> billing ->
interfaces (api, clientarea, webhooks, whmcs). A lower app tells an upper one what happened
through a signal (``customers/signals.py``, ``packages/signals.py``, ``tickets/signals.py``,
``billing/signals.py``), never by importing it."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("customers", "packages", "tickets", "billing")
INTERFACES = ("api", "clientarea", "webhooks", "whmcs")


def _imported_apps(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _offenders(app: str, forbidden: set[str]) -> list[str]:
    return sorted(
        f"{path.relative_to(ROOT)} imports {', '.join(sorted(_imported_apps(path) & forbidden))}"
        for path in (ROOT / app).rglob("*.py")
        if _imported_apps(path) & forbidden
    )


@pytest.mark.parametrize("app", LAYERS)
def test_a_domain_app_imports_no_app_above_it(app):
    above = set(LAYERS[LAYERS.index(app) + 1 :]) | set(INTERFACES)
    assert _offenders(app, above) == []


@pytest.mark.parametrize("app", INTERFACES)
def test_no_interface_imports_another_interface(app):
    assert _offenders(app, set(INTERFACES) - {app}) == []


def test_the_project_package_imports_no_app_but_where_it_wires_them():
    # settings, periods, queue, middleware sit below every app; urls wires the interfaces, and
    # roles reads the portal login of the lowest app (customers), which every app may import.
    allowed = ("supportbilling/urls.py ", "supportbilling/roles.py imports customers")
    offenders = [
        line
        for line in _offenders("supportbilling", set(LAYERS) | set(INTERFACES))
        if not line.startswith(allowed)
    ]
    assert offenders == []
