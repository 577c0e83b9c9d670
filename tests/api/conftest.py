"""The API tests share the billing tests' ``world`` (two clients, one user of each role) and
their fast password hashing."""

from tests.billing.conftest import ROLES, _fast_passwords, api_as, world

__all__ = ["ROLES", "_fast_passwords", "api_as", "world"]
