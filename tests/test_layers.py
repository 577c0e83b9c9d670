"""The HTTP API is an interface: it may import every domain app, and no domain app imports it."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOMAIN_APPS = ("customers", "packages", "tickets", "billing", "clientarea", "supportbilling")


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("app", DOMAIN_APPS)
def test_no_domain_app_imports_the_api(app):
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / app).rglob("*.py")
        if any(name == "api" or name.startswith("api.") for name in _imported_modules(path))
    ]
    assert offenders == []
