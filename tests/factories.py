"""factory-boy factories with fixed Decimal values; build the domain for the tests."""

import datetime as dt
from decimal import Decimal

import factory
from django.contrib.auth.models import Group, User
from djmoney.money import Money

from billing.models import BillableItem
from customers.models import Client, ClientUser
from packages.models import (
    BillingMode,
    BillingPeriod,
    InvoiceAction,
    PackagePrice,
    Subscription,
    SubscriptionStatus,
    SupportPackage,
)
from supportbilling.periods import period_of
from supportbilling.roles import FINANCE_GROUP, OPERATORS_GROUP
from tickets.models import MessageKind, Ticket, TicketMessage, TimeEntry

PASSWORD = "test-pass-123!"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.test")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class OperatorFactory(UserFactory):
    username = factory.Sequence(lambda n: f"operator{n}")
    is_staff = True

    @factory.post_generation
    def groups(obj, create, extracted, **kwargs):
        if create:
            obj.groups.add(Group.objects.get(name=OPERATORS_GROUP))


class FinanceFactory(UserFactory):
    username = factory.Sequence(lambda n: f"finance{n}")
    is_staff = True

    @factory.post_generation
    def groups(obj, create, extracted, **kwargs):
        if create:
            obj.groups.add(Group.objects.get(name=FINANCE_GROUP))


class AdminFactory(UserFactory):
    username = factory.Sequence(lambda n: f"admin{n}")
    is_staff = True
    is_superuser = True


class ClientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Client

    name = factory.Sequence(lambda n: f"Client {n} Ltd")
    email = factory.Sequence(lambda n: f"billing{n}@client.test")
    currency = "EUR"
    active = True


class ClientUserFactory(factory.django.DjangoModelFactory):
    """A portal login; ``ClientUserFactory(client=c).user`` is the User."""

    class Meta:
        model = ClientUser

    user = factory.SubFactory(UserFactory)
    client = factory.SubFactory(ClientFactory)


class PackageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SupportPackage

    name = factory.Sequence(lambda n: f"Package {n}")
    billing_mode = BillingMode.RECURRING
    included_hours = Decimal("10.00")
    invoice_action = InvoiceAction.NEXT_INVOICE
    show_work_log = True
    active = True


class PackagePriceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PackagePrice

    package = factory.SubFactory(PackageFactory)
    fee = Money(Decimal("500.00"), "EUR")
    hourly_rate = Money(Decimal("60.00"), "EUR")


def package_with_prices(
    prices: dict[str, tuple[str, str]] | None = None, **package_fields
) -> SupportPackage:
    """A package priced per currency: ``{"EUR": ("500.00", "60.00")}`` (fee, hourly rate)."""
    package = PackageFactory(**package_fields)
    for currency, (fee, rate) in (prices or {"EUR": ("500.00", "60.00")}).items():
        PackagePriceFactory(
            package=package,
            fee=Money(Decimal(fee), currency),
            hourly_rate=Money(Decimal(rate), currency),
        )
    return package


class SubscriptionFactory(factory.django.DjangoModelFactory):
    """Written directly, for set-up; ``packages.services.subscription_create`` is the real path.
    Like it, makes sure the start month has its BillingPeriod row (billing began by then), so
    the scheduled close bills the subscription's months."""

    class Meta:
        model = Subscription
        skip_postgeneration_save = True

    client = factory.SubFactory(ClientFactory)
    package = factory.LazyFunction(package_with_prices)
    status = SubscriptionStatus.ACTIVE
    start_date = dt.date(2026, 1, 1)
    end_date = None
    # Like subscription_create: a bucket's size is the package's hours when it is bought.
    bucket_hours = factory.LazyAttribute(
        lambda s: (
            Decimal(s.package.included_hours)
            if s.package.billing_mode == BillingMode.ONE_TIME
            and Decimal(s.package.included_hours) > 0
            else None
        )
    )

    @factory.post_generation
    def billing_started(obj, create, extracted, **kwargs):
        if create:
            BillingPeriod.objects.get_or_create(month=period_of(obj.start_date))


class TicketFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Ticket

    subscription = factory.SubFactory(SubscriptionFactory)
    client = factory.LazyAttribute(
        lambda t: t.subscription.client if t.subscription else ClientFactory()
    )
    subject = factory.Sequence(lambda n: f"Ticket subject {n}")
    track_time = True


class TicketMessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TicketMessage

    ticket = factory.SubFactory(TicketFactory)
    kind = MessageKind.CLIENT_REPLY
    body = "Please help."


class TimeEntryFactory(factory.django.DjangoModelFactory):
    """Written directly (bypassing the rules), for set-up of large or past data only."""

    class Meta:
        model = TimeEntry

    ticket = factory.SubFactory(TicketFactory)
    subscription = factory.LazyAttribute(lambda e: e.ticket.subscription)
    operator = factory.SubFactory(OperatorFactory)
    hours = Decimal("1.00")
    work_date = dt.date(2026, 10, 14)
    note = "Work"


class BillableItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BillableItem

    subscription = factory.SubFactory(SubscriptionFactory)
    client = factory.LazyAttribute(lambda i: i.subscription.client)
    period = dt.date(2026, 10, 1)
    kind = "fee"
    description = "Support package 2026-10"
    unit = "quantity"
    quantity = Decimal("1.00")
    unit_price = Money(Decimal("500.00"), "EUR")
    amount = Money(Decimal("500.00"), "EUR")
    invoice_action = InvoiceAction.NEXT_INVOICE


def subscription_with_overtime(package=None, month: dt.date = dt.date(2026, 10, 1)):
    """A subscription of ``package`` (default: 10 h included at 500.00 EUR, 60.00 EUR per extra
    hour) with 12.25 h logged in ``month`` through the time service: a fee and 2.25 h of
    overtime once the month closes."""
    from tickets.services import time_entry_log

    subscription = SubscriptionFactory(
        package=package or package_with_prices({"EUR": ("500.00", "60.00")})
    )
    ticket = TicketFactory(subscription=subscription)
    operator = OperatorFactory()
    for hours in ("8", "4.25"):
        time_entry_log(
            ticket=ticket, operator=operator, hours=hours, work_date=month.replace(day=14)
        )
    return subscription
