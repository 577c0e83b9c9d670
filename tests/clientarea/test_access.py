"""Who may see what, as a matrix over every portal URL (taken from the URL configuration, so a
new URL without an entry here fails): client A asking for client B's objects gets 404,
anonymous users are sent to sign in, staff are sent to the admin."""

import pytest
from django.urls import reverse

from clientarea import urls as portal_urls
from customers.models import ClientUser
from packages.models import BillingPeriod, PeriodStatus
from tests.clientarea.conftest import SEPTEMBER
from tests.factories import (
    AdminFactory,
    ClientUserFactory,
    FinanceFactory,
    OperatorFactory,
    SubscriptionFactory,
    TicketFactory,
    TimeEntryFactory,
    UserFactory,
)
from tickets.models import Ticket, TicketMessage, TicketStatus

pytestmark = pytest.mark.django_db

# Sign-in and password pages: open to everyone (tested in test_auth.py).
AUTH_PAGES = {
    "login",
    "logout",
    "password_change",
    "password_change_done",
    "password_reset",
    "password_reset_done",
    "password_reset_confirm",
    "password_reset_complete",
}
# The signed link of an e-mail, answered without signing in (tests/tickets/test_notifications.py).
EMAIL_LINKS = {"unsubscribe"}
# Files of messages, for client users and staff alike (tests/tickets/test_attachments.py).
FILES = {"attachment"}
# Statement PDFs of closed months: the client's users only, 404 for others, staff to the admin
# (tests/billing/test_statements.py; the whole role matrix in tests/security).
STATEMENTS = {"statement", "statement_revision"}
# Who is signed in, as JSON: refusals in JSON too (tests/clientarea/test_me.py).
JSON = {"me"}
# The site's icon, for every browser (tests/test_error_pages.py).
PUBLIC = {"favicon"}
# A POST naming a time entry or an item in its body (tests/clientarea/test_disputes.py: another
# client's object is a 404, anonymous users sign in, staff go to the admin).
DISPUTE_POSTS = {"dispute_new"}
# name -> (method, the kind of object in the URL or None, the POST data)
PORTAL_PAGES = {
    "home": ("get", None, None),
    "history": ("get", None, None),
    "tickets": ("get", None, None),
    "ticket_new": ("get", None, None),
    "subscription": ("get", "subscription", None),
    "subscription_estimate": ("get", "subscription", None),
    "closed_month": ("get", "closed_month", None),
    "closed_month_csv": ("get", "closed_month", None),
    "ticket": ("get", "ticket", None),
    "ticket_reply": ("post", "ticket", {"body": "Let me in"}),
    "ticket_close": ("post", "ticket", {}),
    "notifications": ("get", None, None),
    "disputes": ("get", None, None),
    "overage_approve": ("post", "subscription", {"hours": "1"}),
    "overage_cap": ("post", "subscription", {"cap_hours": "1"}),
}
# The overage forms of a subscription go back to its card on the dashboard.
BACK_TO_DASHBOARD = {"overage_approve", "overage_cap"}


def test_every_portal_url_is_in_the_matrix():
    names = {pattern.name for pattern in portal_urls.urlpatterns}
    assert names == (
        AUTH_PAGES
        | EMAIL_LINKS
        | FILES
        | STATEMENTS
        | JSON
        | PUBLIC
        | DISPUTE_POSTS
        | set(PORTAL_PAGES)
    )


@pytest.fixture
def world():
    """Client A's user; client B with a subscription and a ticket with time in the closed
    September."""
    member_a = ClientUserFactory()
    SubscriptionFactory(client=member_a.client)
    subscription_b = SubscriptionFactory()
    ticket_b = TicketFactory(subscription=subscription_b, subject="B's secret subject")
    TimeEntryFactory(ticket=ticket_b, work_date=SEPTEMBER, note="B's secret note")
    BillingPeriod.objects.update_or_create(
        month=SEPTEMBER, defaults={"status": PeriodStatus.CLOSED}
    )
    return {"a": member_a, "subscription": subscription_b, "ticket": ticket_b}


def url_of(name, kind, world):
    if kind is None:
        return reverse(f"clientarea:{name}")
    if kind == "closed_month":
        return reverse(f"clientarea:{name}", args=[world["subscription"].pk, "2026-09"])
    return reverse(f"clientarea:{name}", args=[world[kind].pk])


@pytest.mark.parametrize("name", [n for n, (_, kind, _) in PORTAL_PAGES.items() if kind])
def test_client_a_gets_404_for_client_bs_objects(client, world, name):
    method, kind, data = PORTAL_PAGES[name]
    client.force_login(world["a"].user)

    response = getattr(client, method)(url_of(name, kind, world), data or {})

    assert response.status_code == 404
    assert "secret" not in response.content.decode()
    ticket = Ticket.objects.get(pk=world["ticket"].pk)
    assert ticket.status == TicketStatus.OPEN
    assert not TicketMessage.objects.filter(ticket=ticket).exists()


@pytest.mark.parametrize("name", list(PORTAL_PAGES))
def test_client_b_may_use_its_own_objects(client, world, name):
    method, kind, data = PORTAL_PAGES[name]
    member_b = ClientUserFactory(client=world["subscription"].client)
    client.force_login(member_b.user)

    response = getattr(client, method)(url_of(name, kind, world), data or {})

    assert response.status_code in (200, 302)
    if name in BACK_TO_DASHBOARD:
        assert response["Location"].startswith(reverse("clientarea:home") + "#overage-")
    elif response.status_code == 302:
        assert response["Location"].startswith(
            reverse("clientarea:ticket", args=[world["ticket"].pk])
        )


@pytest.mark.parametrize("name", list(PORTAL_PAGES))
def test_anonymous_users_are_sent_to_sign_in(client, world, name):
    method, kind, data = PORTAL_PAGES[name]
    url = url_of(name, kind, world)

    response = getattr(client, method)(url, data or {})

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("clientarea:login") + "?next=")
    assert not TicketMessage.objects.exists()


@pytest.mark.parametrize("staff_factory", [OperatorFactory, FinanceFactory, AdminFactory])
@pytest.mark.parametrize("name", list(PORTAL_PAGES))
def test_staff_are_sent_to_the_admin(client, world, name, staff_factory):
    method, kind, data = PORTAL_PAGES[name]
    staff = staff_factory()
    # even a staff user who is also linked to a client is not shown client pages
    ClientUser.objects.create(user=staff, client=world["subscription"].client)
    client.force_login(staff)

    response = getattr(client, method)(url_of(name, kind, world), data or {})

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:index")
    assert not TicketMessage.objects.exists()


@pytest.mark.parametrize("name", list(PORTAL_PAGES))
def test_a_user_of_no_client_is_refused(client, world, name):
    method, kind, data = PORTAL_PAGES[name]
    client.force_login(UserFactory())

    response = getattr(client, method)(url_of(name, kind, world), data or {})

    assert response.status_code == 403
    assert "not linked to a client account" in response.content.decode()


@pytest.mark.parametrize(
    "path", ["/tickets/999999/", "/subscriptions/999999/", "/tickets/0/reply/"]
)
def test_objects_that_do_not_exist_are_404(client, world, path):
    client.force_login(world["a"].user)
    method = client.post if path.endswith("reply/") else client.get
    assert method(path, {"body": "x"}).status_code == 404
