"""The role model (supportbilling.roles): the database grants what the module lists, and each
kind of user gets the role the API, the admin and the portal act on."""

import pytest
from django.contrib.auth.models import Group

from supportbilling import roles
from tests.factories import (
    AdminFactory,
    ClientUserFactory,
    FinanceFactory,
    OperatorFactory,
    UserFactory,
)
from tickets import admin as ticket_admin

pytestmark = pytest.mark.django_db


def _granted(group_name: str) -> set[str]:
    group = Group.objects.get(name=group_name)
    return {
        f"{app_label}.{codename}"
        for app_label, codename in group.permissions.values_list(
            "content_type__app_label", "codename"
        )
    }


def test_after_migrate_the_groups_grant_exactly_the_lists_of_the_module():
    for group_name, codes in roles.GROUP_PERMISSIONS.items():
        assert _granted(group_name) == set(codes)


def test_roles_sync_puts_back_a_permission_removed_and_removes_one_added():
    # given an administrator changed the Operators group by hand
    operators = Group.objects.get(name=roles.OPERATORS_GROUP)
    operators.permissions.remove(operators.permissions.get(codename="add_timeentry"))
    operators.permissions.add(
        Group.objects.get(name=roles.FINANCE_GROUP).permissions.get(codename="add_billableitem")
    )
    # when the lists are applied again
    roles.roles_sync()
    # then the group grants exactly the module's list
    assert _granted(roles.OPERATORS_GROUP) == set(roles.GROUP_PERMISSIONS[roles.OPERATORS_GROUP])


@pytest.mark.parametrize(
    ("make", "role"),
    [
        (AdminFactory, roles.ADMINISTRATOR),
        (FinanceFactory, roles.FINANCE),
        (OperatorFactory, roles.OPERATOR),
        (lambda: ClientUserFactory().user, roles.CLIENT_USER),
        (UserFactory, None),
    ],
)
def test_each_kind_of_user_has_its_role(make, role):
    assert roles.role_of(make()) == role


def test_a_client_user_acts_for_their_client_and_staff_for_every_client():
    membership = ClientUserFactory()
    assert roles.is_client_user(membership.user)
    assert roles.client_id_of(membership.user) == membership.client_id
    assert roles.client_id_of(OperatorFactory()) is None


def test_an_inactive_user_has_no_role(django_assert_num_queries):
    operator = OperatorFactory(is_active=False)
    with django_assert_num_queries(0):
        assert roles.roles_of(operator) == frozenset()
    assert not roles.is_staff_member(operator)


def test_the_roles_of_a_user_cost_one_query_per_request(django_assert_num_queries):
    operator = OperatorFactory()
    with django_assert_num_queries(1):
        assert roles.is_operator(operator)
        assert not roles.is_finance(operator)
        assert not roles.is_administrator(operator)


def test_operators_hold_every_permission_of_the_ticket_workspace_and_finance_none_of_its_writes():
    workspace = {
        ticket_admin.PERM_LOG_TIME,
        ticket_admin.PERM_CHANGE_TIME,
        ticket_admin.PERM_DELETE_TIME,
        ticket_admin.PERM_CHANGE_TICKET,
        ticket_admin.PERM_REPLY,
        ticket_admin.PERM_TIMER,
        ticket_admin.PERM_ADD_SERVICE,
    }
    assert workspace <= set(roles.role_permissions(roles.OPERATOR))
    assert not workspace & set(roles.role_permissions(roles.FINANCE))
    assert roles.role_permissions(roles.CLIENT_USER) == ()
