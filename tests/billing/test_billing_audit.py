"""The admin obeys the rules the API enforces (clients, packages and their prices are saved
through the billing services), and every money change leaves one append-only audit event
with its actor, old and new values, shown on the change pages finance reads."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.models import BillableItem, BillingAction, BillingEvent, UsageAlert
from billing.services.items import billable_item_status_set, billable_items_status_set
from customers.models import Client, ClientUser
from customers.services import client_update
from packages.models import BillingMode, PackagePrice, SupportPackage
from packages.services import package_update
from tests.billing.conftest import api_as
from tests.factories import BillableItemFactory, ClientFactory, UserFactory

pytestmark = pytest.mark.django_db

User = get_user_model()


@pytest.fixture(autouse=True)
def _plain_static_files(settings):
    """Admin pages name their CSS; no collectstatic manifest is needed to test them."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def superuser(client, world):
    client.force_login(world.users["administrator"])
    return client


def _events(**links) -> list[BillingEvent]:
    return list(BillingEvent.objects.filter(**links).order_by("id"))


def _only_event(**links) -> BillingEvent:
    events = _events(**links)
    assert len(events) == 1, [event.detail for event in events]
    return events[0]


# --- admin forms: the API's rules, with the service's message on the form ----------------------


def client_form(client: Client, **changes) -> dict:
    return {
        "name": client.name,
        "email": client.email,
        "currency": client.currency,
        "active": "on" if client.active else "",
        "members-TOTAL_FORMS": "0",
        "members-INITIAL_FORMS": "0",
        **changes,
    }


def package_form(package: SupportPackage, *, delete: str = "", **changes) -> dict:
    """The package's change form as the admin renders it, every price row kept unless its
    currency is ``delete``."""
    prices = list(package.prices.order_by("currency"))
    data = {
        "name": package.name,
        "billing_mode": package.billing_mode,
        "included_hours": str(package.included_hours),
        "invoice_action": package.invoice_action,
        "show_work_log": "on" if package.show_work_log else "",
        "active": "on" if package.active else "",
        "prices-TOTAL_FORMS": str(len(prices)),
        "prices-INITIAL_FORMS": str(len(prices)),
    }
    for index, price in enumerate(prices):
        row = f"prices-{index}-"
        data |= {
            row + "id": str(price.pk),
            row + "package": str(package.pk),
            row + "fee_0": str(price.fee.amount),
            row + "fee_1": price.currency,
            row + "hourly_rate_0": str(price.hourly_rate.amount),
            row + "hourly_rate_1": price.currency,
        }
        if price.currency == delete:
            data[row + "DELETE"] = "on"
    return data | changes


def test_admin_refuses_a_currency_change_under_subscriptions(superuser, world):
    # given ACME has a subscription billed in EUR
    url = reverse("admin:customers_client_change", args=[world.acme.pk])
    # when an administrator switches its currency in the admin
    response = superuser.post(url, client_form(world.acme, currency="USD"))
    # then the form shows the service's reason and nothing changed
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["currency"] == [
        "The client has subscriptions or billable items in EUR; its currency cannot change."
    ]
    world.acme.refresh_from_db()
    assert world.acme.currency == "EUR"
    assert not BillingEvent.objects.exists()


def test_admin_refuses_a_billing_mode_switch_under_subscriptions(superuser, world):
    url = reverse("admin:packages_supportpackage_change", args=[world.package.pk])
    response = superuser.post(url, package_form(world.package, billing_mode=BillingMode.ONE_TIME))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["billing_mode"] == [
        "The package has subscriptions; its billing mode cannot change."
    ]
    world.package.refresh_from_db()
    assert world.package.billing_mode == BillingMode.RECURRING
    assert not BillingEvent.objects.exists()


def test_admin_refuses_to_delete_the_price_a_live_subscription_uses(superuser, world):
    url = reverse("admin:packages_supportpackage_change", args=[world.package.pk])
    response = superuser.post(url, package_form(world.package, delete="USD"))
    assert response.status_code == 200
    (price_formset,) = response.context["inline_admin_formsets"]
    assert price_formset.formset.non_form_errors() == [
        "Subscriptions of this package are billed in USD; keep a price in that currency."
    ]
    assert "keep a price in that currency" in response.content.decode()
    assert set(world.package.prices.values_list("currency", flat=True)) == {"EUR", "USD"}
    assert not BillingEvent.objects.exists()


# --- one audit event per money change, through the API and through the admin -------------------


@pytest.mark.parametrize("path", ["api", "admin"])
def test_an_item_status_change_is_audited_once(world, client, path):
    admin_user = world.users["finance"]
    item = world.item
    if path == "api":
        response = api_as(admin_user).patch(
            f"/api/v1/billable-items/{item.pk}/", {"status": "exported"}, format="json"
        )
        assert response.status_code == 200
    else:
        client.force_login(admin_user)
        client.post(
            reverse("admin:billing_billableitem_changelist"),
            {"action": "mark_exported", "_selected_action": [item.pk, world.other_item.pk]},
        )
        assert _only_event(item=world.other_item).detail["status"] == ["pending", "exported"]
    event = _only_event(item=item)
    assert (event.action, event.actor_username, event.actor_user_id) == (
        BillingAction.ITEM_STATUS,
        admin_user.username,
        admin_user.pk,
    )
    assert event.detail["status"] == ["pending", "exported"]
    assert (event.subscription_id, event.client_id) == (world.subscription.pk, world.acme.pk)


def test_a_refused_or_unchanged_status_writes_nothing(world):
    BillableItem.objects.filter(pk=world.item.pk).update(status="invoiced")
    change = billable_items_status_set(
        item_ids=[world.item.pk], status="void", actor=world.users["finance"]
    )
    assert (change.changed, change.refused) == (0, {"invoiced": 1})
    billable_item_status_set(item=world.item, status="invoiced")
    assert not BillingEvent.objects.exists()


@pytest.mark.parametrize("path", ["api", "admin"])
def test_an_adjustment_is_audited_once(world, client, path):
    finance = world.users["finance"]
    if path == "api":
        response = api_as(finance).post(
            "/api/v1/billable-items/",
            {
                "client": world.acme.pk,
                "period": "2026-09",
                "amount": "-40.00",
                "description": "SLA",
            },
            format="json",
        )
        assert response.status_code == 201
    else:
        client.force_login(finance)
        response = client.post(
            reverse("admin:billing_adjustment_add"),
            {"client": world.acme.pk, "period": "2026-09", "amount": "-40.00", "reason": "SLA"},
        )
        assert response.status_code == 302
    credit = BillableItem.objects.get(kind="adjustment")
    event = _only_event(item=credit)
    assert (event.action, event.actor_username, event.client_id) == (
        BillingAction.ADJUSTMENT_ADDED,
        finance.username,
        world.acme.pk,
    )
    assert event.detail == {"amount": [None, "-40.00 EUR"], "period": "2026-09", "reason": "SLA"}


@pytest.mark.parametrize("path", ["api", "admin"])
def test_a_package_and_price_change_is_audited_once(world, superuser, path):
    administrator = world.users["administrator"]
    package = world.package
    if path == "api":
        response = api_as(administrator).patch(
            f"/api/v1/packages/{package.pk}/",
            {
                "included_hours": "12.00",
                "invoice_action": "due_date",
                "prices": [
                    {"currency": "EUR", "fee": "520.00", "hourly_rate": "60.00"},
                    {"currency": "USD", "fee": "550.00", "hourly_rate": "70.00"},
                    {"currency": "GBP", "fee": "450.00", "hourly_rate": "55.00"},
                ],
            },
            format="json",
        )
        assert response.status_code == 200
    else:
        data = package_form(
            package,
            included_hours="12.00",
            invoice_action="due_date",
            **{"prices-0-fee_0": "520.00"},  # EUR comes first
        )
        data |= {
            "prices-TOTAL_FORMS": "3",
            "prices-2-package": str(package.pk),
            "prices-2-fee_0": "450.00",
            "prices-2-fee_1": "GBP",
            "prices-2-hourly_rate_0": "55.00",
            "prices-2-hourly_rate_1": "GBP",
        }
        response = superuser.post(
            reverse("admin:packages_supportpackage_change", args=[package.pk]), data
        )
        assert response.status_code == 302, response.context["errors"]
    event = _only_event(package=package)
    assert (event.action, event.actor_username) == (
        BillingAction.PACKAGE_CHANGED,
        administrator.username,
    )
    assert event.detail == {
        "included_hours": ["10.00", "12.00"],
        "invoice_action": ["next_invoice", "due_date"],
        "price EUR": ["500.00 EUR + 60.00 EUR/h", "520.00 EUR + 60.00 EUR/h"],
        "price GBP": [None, "450.00 GBP + 55.00 GBP/h"],
    }
    assert set(package.prices.values_list("currency", flat=True)) == {"EUR", "USD", "GBP"}


@pytest.mark.parametrize("path", ["api", "admin"])
def test_a_new_package_with_its_prices_is_audited_once(world, superuser, path):
    administrator = world.users["administrator"]
    if path == "api":
        response = api_as(administrator).post(
            "/api/v1/packages/",
            {
                "name": "Bucket",
                "billing_mode": "one_time",
                "included_hours": "20.00",
                "invoice_action": "next_invoice",
                "prices": [{"currency": "EUR", "fee": "1100.00", "hourly_rate": "0.00"}],
            },
            format="json",
        )
        assert response.status_code == 201
    else:
        response = superuser.post(
            reverse("admin:packages_supportpackage_add"),
            {
                "name": "Bucket",
                "billing_mode": "one_time",
                "included_hours": "20.00",
                "invoice_action": "next_invoice",
                "active": "on",
                "prices-TOTAL_FORMS": "1",
                "prices-INITIAL_FORMS": "0",
                "prices-0-fee_0": "1100.00",
                "prices-0-fee_1": "EUR",
                "prices-0-hourly_rate_0": "0.00",
                "prices-0-hourly_rate_1": "EUR",
            },
        )
        assert response.status_code == 302
    package = SupportPackage.objects.get(name="Bucket")
    event = _only_event(package=package)
    assert (event.action, event.actor_username) == (
        BillingAction.PACKAGE_CREATED,
        administrator.username,
    )
    assert event.detail["billing_mode"] == [None, "one_time"]
    assert event.detail["price EUR"] == [None, "1100.00 EUR + 0.00 EUR/h"]
    assert PackagePrice.objects.get(package=package).fee.amount == Decimal("1100.00")


@pytest.mark.parametrize("path", ["api", "admin"])
def test_a_currency_change_is_audited_once(world, superuser, path):
    administrator = world.users["administrator"]
    newcomer = ClientFactory(name="Initech", currency="EUR")
    if path == "api":
        response = api_as(administrator).patch(
            f"/api/v1/clients/{newcomer.pk}/", {"currency": "GBP"}, format="json"
        )
        assert response.status_code == 200
    else:
        response = superuser.post(
            reverse("admin:customers_client_change", args=[newcomer.pk]),
            client_form(newcomer, currency="GBP"),
        )
        assert response.status_code == 302
    event = _only_event(client=newcomer)
    assert (event.action, event.actor_username, event.detail) == (
        BillingAction.CLIENT_CHANGED,
        administrator.username,
        {"currency": ["EUR", "GBP"]},
    )


@pytest.mark.parametrize("path", ["api", "admin"])
def test_a_portal_login_is_audited_once(world, superuser, path):
    administrator = world.users["administrator"]
    if path == "api":
        response = api_as(administrator).post(
            f"/api/v1/clients/{world.globex.pk}/users/",
            {"username": "gina", "email": "gina@globex.test", "password": "Corr3ct-horse-42"},
            format="json",
        )
        assert response.status_code == 201
    else:
        gina = UserFactory(username="gina", email="gina@globex.test")
        response = superuser.post(
            reverse("admin:customers_client_change", args=[world.globex.pk]),
            client_form(
                world.globex,
                **{"members-TOTAL_FORMS": "1", "members-0-user": str(gina.pk)},
            ),
        )
        assert response.status_code == 302
    assert ClientUser.objects.filter(client=world.globex, user__username="gina").exists()
    event = _only_event(client=world.globex)
    assert (event.action, event.actor_username, event.detail) == (
        BillingAction.PORTAL_LOGIN_ADDED,
        administrator.username,
        {"username": "gina", "email": "gina@globex.test"},
    )


@pytest.mark.parametrize("path", ["api", "admin"])
def test_a_new_client_is_audited_once(world, superuser, path):
    administrator = world.users["administrator"]
    fields = {"name": "Initech", "email": "billing@initech.test", "currency": "PLN"}
    if path == "api":
        response = api_as(administrator).post("/api/v1/clients/", fields, format="json")
        assert response.status_code == 201
    else:
        response = superuser.post(
            reverse("admin:customers_client_add"),
            {**fields, "active": "on", "members-TOTAL_FORMS": "0", "members-INITIAL_FORMS": "0"},
        )
        assert response.status_code == 302
    event = _only_event(client=Client.objects.get(name="Initech"))
    assert (event.action, event.actor_username, event.detail["currency"]) == (
        BillingAction.CLIENT_CREATED,
        administrator.username,
        [None, "PLN"],
    )


def test_a_portal_login_added_from_its_own_admin_list_is_audited(world, superuser):
    gina = UserFactory(username="gina")
    response = superuser.post(
        reverse("admin:customers_clientuser_add"), {"user": gina.pk, "client": world.globex.pk}
    )
    assert response.status_code == 302
    event = _only_event(client=world.globex)
    assert (event.action, event.detail["username"]) == (BillingAction.PORTAL_LOGIN_ADDED, "gina")


# --- where finance reads it -----------------------------------------------------------------


def test_the_audit_shows_on_the_change_pages_newest_first_in_local_time(
    world, client, settings, time_machine
):
    # given a site in Prague, and two changes of ACME's fee item made by finance
    settings.TIME_ZONE = "Europe/Prague"
    finance = world.users["finance"]
    time_machine.move_to(dt.datetime(2026, 10, 20, 9, 0, tzinfo=dt.UTC), tick=False)
    billable_item_status_set(item=world.item, status="exported", actor=finance)
    time_machine.move_to(dt.datetime(2026, 10, 21, 9, 0, tzinfo=dt.UTC), tick=False)
    billable_item_status_set(item=world.item, status="invoiced", actor=finance)
    client_update(client=world.acme, fields={"name": "ACME Corp"}, actor=finance)
    client.force_login(finance)
    pages = {
        "item": reverse("admin:billing_billableitem_change", args=[world.item.pk]),
        "subscription": reverse("admin:packages_subscription_change", args=[world.subscription.pk]),
        "client": reverse("admin:customers_client_change", args=[world.acme.pk]),
    }
    for name, url in pages.items():
        # when finance opens the page
        page = client.get(url).content.decode()
        audit = page[page.index('id="billing-audit"') :]
        # then the changes are listed, newest first, readable, at Prague's time, with who
        newer = audit.index("status: Exported \u2192 Invoiced")
        older = audit.index("status: Pending \u2192 Exported")
        assert newer < older, name
        assert "2026-10-21 11:00 CEST" in audit, name
        assert finance.username in audit, name
    # and the client's own changes only on the client's page
    assert "name: ACME \u2192 ACME Corp" in client.get(pages["client"]).content.decode()
    assert "name: ACME" not in client.get(pages["item"]).content.decode()


def test_the_package_page_lists_price_changes_in_constant_queries(world, client):
    administrator = world.users["administrator"]
    client.force_login(world.users["finance"])
    url = reverse("admin:packages_supportpackage_change", args=[world.package.pk])

    def change_fee(fee: str) -> None:
        package_update(
            package=world.package,
            fields={},
            prices=[
                {"currency": "EUR", "fee": Decimal(fee), "hourly_rate": Decimal("60.00")},
                {"currency": "USD", "fee": Decimal("550.00"), "hourly_rate": Decimal("70.00")},
            ],
            actor=administrator,
        )

    change_fee("510.00")
    with CaptureQueriesContext(connection) as one_event:
        page = client.get(url).content.decode()
    assert "price EUR: 500.00 EUR + 60.00 EUR/h \u2192 510.00 EUR + 60.00 EUR/h" in page
    for fee in ("520.00", "530.00", "540.00"):
        change_fee(fee)
    with CaptureQueriesContext(connection) as four_events:
        page = client.get(url).content.decode()
    assert page.count("price EUR:") == 4
    assert len(four_events) == len(one_event)


# --- append-only --------------------------------------------------------------------------------


def test_postgres_refuses_to_change_or_delete_an_audit_row(postgres, world):
    # given an audited change by a user who later leaves
    leaver = UserFactory(username="leaver", is_staff=True)
    billable_item_status_set(item=world.item, status="exported", actor=leaver)
    event = BillingEvent.objects.get()
    # then the database refuses to rewrite or remove it
    for statement in (
        lambda: BillingEvent.objects.filter(pk=event.pk).update(detail={}),
        lambda: BillingEvent.objects.filter(pk=event.pk).delete(),
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            statement()
    # and deleting the user leaves the row, and who it was, as it is
    get_user_model().objects.filter(pk=leaver.pk).delete()
    event.refresh_from_db()
    assert (event.actor_username, event.actor_user_id, event.detail["status"]) == (
        "leaver",
        leaver.pk,
        ["pending", "exported"],
    )


def test_an_audited_item_client_or_package_cannot_be_deleted_under_its_history(world):
    from django.db.models import ProtectedError

    billable_item_status_set(item=world.item, status="exported")
    with pytest.raises(ProtectedError):
        BillableItem.objects.filter(pk=world.item.pk).delete()
    lonely = BillableItemFactory(subscription=world.subscription, kind="overtime")
    BillableItem.objects.filter(pk=lonely.pk).delete()  # no history: nothing holds it


@pytest.mark.parametrize("path", ["client page", "portal login list"])
def test_removing_a_portal_login_in_the_admin_is_audited(world, superuser, path):
    # given gina acts for Globex
    gina = UserFactory(username="gina", email="gina@globex.test")
    membership = ClientUser.objects.create(client=world.globex, user=gina)
    # when an administrator removes her portal login
    if path == "client page":
        response = superuser.post(
            reverse("admin:customers_client_change", args=[world.globex.pk]),
            client_form(
                world.globex,
                **{
                    "members-TOTAL_FORMS": "1",
                    "members-INITIAL_FORMS": "1",
                    "members-0-id": str(membership.pk),
                    "members-0-client": str(world.globex.pk),
                    "members-0-user": str(gina.pk),
                    "members-0-DELETE": "on",
                },
            ),
        )
    else:
        response = superuser.post(
            reverse("admin:customers_clientuser_delete", args=[membership.pk]), {"post": "yes"}
        )
    assert response.status_code == 302
    # then the login is gone, the user account stays, and the client's audit says who did it
    assert not ClientUser.objects.filter(user=gina).exists()
    assert User.objects.filter(pk=gina.pk).exists()
    event = _only_event(client=world.globex)
    assert (event.action, event.actor_username, event.detail) == (
        BillingAction.PORTAL_LOGIN_REMOVED,
        world.users["administrator"].username,
        {"username": "gina", "email": "gina@globex.test"},
    )


def test_usage_alerts_are_read_only_in_the_admin(world, superuser):
    # given an alert that was recorded (its e-mail is the record's purpose)
    alert = UsageAlert.objects.create(
        subscription=world.subscription,
        period=dt.date(2026, 10, 1),
        threshold=80,
        used_hours=Decimal("8.00"),
        included_hours=Decimal("10.00"),
    )
    change = reverse("admin:billing_usagealert_change", args=[alert.pk])
    # when an administrator opens it, tries to edit or to delete it
    page = superuser.get(change)
    superuser.post(change, {"threshold": "100", "period": "2026-11-01"})
    deleted = superuser.post(
        reverse("admin:billing_usagealert_delete", args=[alert.pk]), {"post": "yes"}
    )
    # then the page shows it without a save button, and nothing changed or went away
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert deleted.status_code == 403
    alert.refresh_from_db()
    assert (alert.threshold, alert.period) == (80, dt.date(2026, 10, 1))
