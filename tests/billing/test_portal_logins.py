"""client_user_replace: the admin's edit of a portal login, one action in one transaction."""

import pytest
from django.core.exceptions import ValidationError

from billing.models import BillingAction, BillingEvent
from customers.models import ClientUser
from customers.services import client_user_replace
from tests.factories import AdminFactory, ClientFactory, ClientUserFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_a_login_that_names_another_user_replaces_the_old_one_and_is_audited():
    # given ACME's portal login of ann
    login = ClientUserFactory()
    acme, administrator = login.client, AdminFactory()
    bob = UserFactory(username="bob", email="bob@acme.test")
    # when the administrator changes the row to bob
    client_user_replace(replaced_id=login.pk, client=acme, user=bob, actor=administrator)
    # then bob acts for ACME instead of ann, and both changes are in the billing audit
    assert list(ClientUser.objects.values_list("client_id", "user_id")) == [(acme.pk, bob.pk)]
    events = BillingEvent.objects.filter(client=acme).order_by("id")
    assert [(event.action, event.detail["username"]) for event in events] == [
        (BillingAction.PORTAL_LOGIN_REMOVED, login.user.username),
        (BillingAction.PORTAL_LOGIN_ADDED, "bob"),
    ]


def test_a_refused_replacement_keeps_the_old_login():
    # given ACME's login of ann, and bob who acts for Globex
    login = ClientUserFactory()
    bob = ClientUserFactory(client=ClientFactory(name="Globex")).user
    # when ann's row is changed to bob
    with pytest.raises(ValidationError) as excinfo:
        client_user_replace(replaced_id=login.pk, client=login.client, user=bob)
    # then it is refused with the reason, and ann still acts for ACME
    assert excinfo.value.message_dict == {"user": ["That user already acts for another client."]}
    assert ClientUser.objects.filter(pk=login.pk, user=login.user).exists()
    assert not BillingEvent.objects.exists()


def test_a_new_login_replaces_nothing():
    acme, carol = ClientFactory(), UserFactory()
    client_user_replace(replaced_id=None, client=acme, user=carol)
    assert ClientUser.objects.get(user=carol).client == acme
