import pytest
from django.core.cache import caches


@pytest.fixture(autouse=True)
def _empty_fragment_cache():
    """Each test starts without cached lists of a ticket page (the cache lives in the process)."""
    caches["fragments"].clear()
