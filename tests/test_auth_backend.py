"""The project's ModelBackend (supportbilling.auth) grants exactly what Django's does, from one
query: a user's own permissions and their groups', nothing for an inactive user, everything for
a superuser."""

import pytest
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from supportbilling.auth import ModelBackendOneQuery

pytestmark = pytest.mark.django_db


def fresh(user: User) -> User:
    return User.objects.get(pk=user.pk)  # no permission cache


@pytest.fixture
def clerk():
    user = User.objects.create_user("clerk", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_ticket"))
    group = Group.objects.create(name="Clerks")
    group.permissions.add(Permission.objects.get(codename="change_client"))
    user.groups.add(group)
    return user


def test_own_and_group_permissions_in_one_query(clerk):
    user = fresh(clerk)
    with CaptureQueriesContext(connection) as context:
        granted = ModelBackendOneQuery().get_all_permissions(user)
        assert user.has_perm("tickets.view_ticket") and user.has_perm("customers.change_client")
    assert len(context.captured_queries) == 1
    assert granted == ModelBackend().get_all_permissions(fresh(clerk))
    assert {"tickets.view_ticket", "customers.change_client"} <= granted
    assert not user.has_perm("billing.delete_billableitem")


def test_an_inactive_user_has_none_and_a_superuser_all(clerk):
    clerk.is_active = False
    clerk.save()
    admin = User.objects.create_superuser("root-user", password="x")

    assert ModelBackendOneQuery().get_all_permissions(fresh(clerk)) == set()
    assert not fresh(clerk).has_perm("tickets.view_ticket")
    assert ModelBackendOneQuery().get_all_permissions(
        fresh(admin)
    ) == ModelBackend().get_all_permissions(fresh(admin))
    assert (
        len(ModelBackendOneQuery().get_all_permissions(fresh(admin))) == Permission.objects.count()
    )


def test_a_permission_removed_is_gone_on_the_next_request(clerk):
    assert fresh(clerk).has_perm("customers.change_client")
    Group.objects.get(name="Clerks").permissions.clear()

    assert not fresh(clerk).has_perm("customers.change_client")
    assert fresh(clerk).has_perm("tickets.view_ticket")
