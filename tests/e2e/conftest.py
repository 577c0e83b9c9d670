"""Browser tests: real Chromium (see the root conftest) against pytest-django's live server."""

import pytest


@pytest.fixture(autouse=True)
def plain_static_names(settings):
    """The live server answers /static/ through the staticfiles finders, which do not know the
    manifest's hashed names: browser tests use the plain names (no collectstatic needed)."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
