"""manage.py seed_demo: a small, believable data set to click through, with printed logins."""

import datetime as dt
import random
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from djmoney.money import Money

from billing.models import BillableItem, ItemStatus
from billing.selectors.periods import periods_to_close
from billing.services.items import adjustment_create, billable_items_status_set
from billing.services.rollup import period_close
from customers.models import Client, ClientUser
from packages.models import BillingMode, InvoiceAction, PackagePrice, Subscription, SupportPackage
from packages.services import subscription_create
from supportbilling.periods import (
    local_today,
    period_label,
    period_last_day,
    period_next,
    period_of,
    period_previous,
    periods_between,
)
from supportbilling.roles import FINANCE_GROUP, OPERATORS_GROUP
from tickets.models import MessageKind, Ticket, TicketMessage, TicketPriority, TicketStatus
from tickets.services import time_entry_log

DEMO_PASSWORD = "support-demo-2026"

LOGINS = [
    ("admin", "administrator (everything)", "/admin/"),
    ("alice", "operator", "/admin/"),
    ("bob", "operator", "/admin/"),
    ("fiona", "finance", "/admin/"),
    ("jane", "client user of ACME Ltd (EUR)", "/"),
    ("john", "client user of Globex Inc (USD)", "/"),
]

WORK = [
    "Restarted postfix and cleared the mail queue",
    "Renewed the TLS certificate",
    "Investigated high load on the database server",
    "Updated WordPress and its plugins",
    "Restored a deleted mailbox from backup",
    "Configured DNS records for the new domain",
    "Checked backups and disk usage",
]

ANSWERS = [
    "We are on it and will report back shortly.",
    "Done: please check on your side and tell us if anything is still wrong.",
    "We found the cause and fixed it; details in the work log.",
]

SUBJECTS = [
    "Mail server down",
    "Website slow since this morning",
    "Please renew our SSL certificate",
    "Cannot log in to the control panel",
    "Move our site to the new server",
    "Backup restore request",
    "DNS change for shop.example.test",
]


def _moment(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour, minute)))


class Command(BaseCommand):
    help = "Create demo packages, clients, users, tickets and time, and close past months."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--leave-open",
            action="store_true",
            help="Leave the last ended month open, to try closing it in the admin.",
        )

    def handle(self, *args: object, **options: Any) -> None:
        if User.objects.filter(username="admin").exists():
            self.stdout.write("Demo data is already there.")
        else:
            with transaction.atomic():
                self._seed()
            self._close_past_months(leave_open=options["leave_open"])
        self._print_logins()

    def _seed(self) -> None:
        rng = random.Random(2026)
        User.objects.create_superuser("admin", "admin@example.test", DEMO_PASSWORD)
        operators = []
        for name in ("alice", "bob"):
            user = User.objects.create_user(
                name,
                f"{name}@example.test",
                DEMO_PASSWORD,
                is_staff=True,
                first_name=name.title(),
            )
            user.groups.add(Group.objects.get(name=OPERATORS_GROUP))
            operators.append(user)
        finance = User.objects.create_user(
            "fiona", "fiona@example.test", DEMO_PASSWORD, is_staff=True, first_name="Fiona"
        )
        finance.groups.add(Group.objects.get(name=FINANCE_GROUP))

        def package(name, mode, hours, prices, show_work_log=True):
            pkg = SupportPackage.objects.create(
                name=name,
                billing_mode=mode,
                included_hours=Decimal(hours),
                invoice_action=InvoiceAction.NEXT_INVOICE,
                show_work_log=show_work_log,
            )
            for currency, fee, rate in prices:
                PackagePrice.objects.create(
                    package=pkg, fee=Money(fee, currency), hourly_rate=Money(rate, currency)
                )
            return pkg

        gold = package(
            "Gold",
            BillingMode.RECURRING,
            "10",
            [
                ("EUR", "500.00", "60.00"),
                ("USD", "550.00", "65.00"),
                ("GBP", "430.00", "52.00"),
                ("PLN", "2100.00", "250.00"),
            ],
        )
        silver = package(
            "Silver",
            BillingMode.RECURRING,
            "4",
            [
                ("EUR", "220.00", "65.00"),
                ("USD", "240.00", "70.00"),
                ("GBP", "190.00", "56.00"),
                ("PLN", "950.00", "270.00"),
            ],
            show_work_log=False,
        )
        hourly = package(
            "Pay per hour",
            BillingMode.RECURRING,
            "0",
            [
                ("EUR", "0.00", "75.00"),
                ("USD", "0.00", "80.00"),
                ("GBP", "0.00", "65.00"),
                ("PLN", "0.00", "320.00"),
            ],
        )
        bucket = package(
            "20 hours block",
            BillingMode.ONE_TIME,
            "20",
            [
                ("EUR", "1100.00", "0.00"),
                ("USD", "1200.00", "0.00"),
                ("GBP", "950.00", "0.00"),
                ("PLN", "4700.00", "0.00"),
            ],
        )

        today = local_today()
        start = period_previous(period_previous(period_previous(period_of(today))))
        # Sold three months ago: a start date that far back is refused today.
        sold_at = timezone.make_aware(dt.datetime.combine(start, dt.time(9)))
        clients = [
            ("ACME Ltd", "EUR", "jane", [gold, bucket]),
            ("Globex Inc", "USD", "john", [silver]),
            ("Initech", "GBP", None, [hourly]),
            ("Kowalski Hosting", "PLN", None, [gold]),
        ]
        for name, currency, username, packages in clients:
            slug = name.split()[0].lower()
            client = Client.objects.create(
                name=name, email=f"billing@{slug}.example.test", currency=currency
            )
            portal_user: User | None = None
            if username:
                portal_user = User.objects.create_user(
                    username,
                    f"{username}@{slug}.example.test",
                    DEMO_PASSWORD,
                    first_name=username.title(),
                )
                ClientUser.objects.create(user=portal_user, client=client)
            subscriptions = [
                subscription_create(client=client, package=pkg, start_date=start, now=sold_at)
                for pkg in packages
            ]
            for subscription in subscriptions:
                for month in periods_between(start, period_of(today)):
                    for _ in range(rng.randint(1, 3)):
                        self._ticket(
                            rng,
                            client=client,
                            subscription=subscription,
                            contact=portal_user,
                            operators=operators,
                            month=month,
                            today=today,
                        )
            # A busy month for the Gold client, so overtime shows up.
            if client.name == "ACME Ltd":
                busy = Ticket.objects.create(
                    client=client,
                    subscription=subscriptions[0],
                    subject="Migration to the new cluster",
                    status=TicketStatus.CLOSED,
                    assignee=operators[0],
                )
                month = period_previous(period_of(today))
                for day in range(1, 7):
                    time_entry_log(
                        ticket=busy,
                        operator=operators[0],
                        hours=Decimal("2.25"),
                        work_date=month + dt.timedelta(days=day),
                        note="Migration work",
                    )
                self._backdate(busy, at=_moment(month, 1, 10))

    def _ticket(
        self,
        rng: random.Random,
        *,
        client: Client,
        subscription: Subscription,
        contact: User | None,
        operators: list[User],
        month: dt.date,
        today: dt.date,
    ) -> None:
        """One ticket of ``month`` as a support desk has them: a past month's are closed (or
        on hold), the current month's open, answered, waiting for the client, replied to by
        the client, on hold or closed; most are assigned, and the time is logged on the
        days the work was done. A message of a client without a portal login has no author
        (as mail filed by an operator): the admin shows the client and its contact."""
        last = min(period_last_day(month), today)
        opened = month + dt.timedelta(days=rng.randint(0, (last - month).days))
        if month < period_of(today):
            status: str = rng.choice([TicketStatus.CLOSED] * 5 + [TicketStatus.ON_HOLD])
        else:
            status = rng.choice(list(TicketStatus.values))
        operator = rng.choice(operators)
        assignee = None if status == TicketStatus.OPEN and rng.random() < 0.5 else operator
        ticket = Ticket.objects.create(
            client=client,
            subscription=subscription,
            subject=rng.choice(SUBJECTS),
            status=status,
            priority=rng.choice(list(TicketPriority.values)),
            assignee=assignee,
        )
        at = _moment(opened, rng.randint(8, 16), rng.randint(0, 59))
        conversation = [(MessageKind.CLIENT_REPLY, "Hello, could you please have a look? Thanks.")]
        if status != TicketStatus.OPEN:
            conversation.append((MessageKind.OPERATOR_REPLY, rng.choice(ANSWERS)))
        if status == TicketStatus.CUSTOMER_REPLY:
            conversation.append((MessageKind.CLIENT_REPLY, "Thanks, but it happens again."))
        if status == TicketStatus.ON_HOLD:
            conversation.append((MessageKind.INTERNAL_NOTE, "Waiting for the hosting provider."))
        if status == TicketStatus.CLOSED:
            conversation.append((MessageKind.CLIENT_REPLY, "Works now, thank you!"))
        for number, (kind, body) in enumerate(conversation):
            author = contact if kind == MessageKind.CLIENT_REPLY else operator
            message = TicketMessage.objects.create(
                ticket=ticket, author=author, kind=kind, body=body
            )
            written = at + dt.timedelta(hours=3 * number)
            TicketMessage.objects.filter(pk=message.pk).update(created_at=written)
        if assignee is not None:
            for _ in range(rng.randint(1, 3)):
                work_date = opened + dt.timedelta(days=rng.randint(0, 3))
                if subscription.package.billing_mode == BillingMode.ONE_TIME:
                    hours = Decimal("0.50")
                else:
                    hours = Decimal(rng.randint(1, 8)) * Decimal("0.25")
                time_entry_log(
                    ticket=ticket,
                    operator=assignee,
                    hours=hours,
                    work_date=min(work_date, last),
                    note=rng.choice(WORK),
                )
        self._backdate(ticket, at=at, updated=at + dt.timedelta(hours=3 * len(conversation)))

    @staticmethod
    def _backdate(ticket: Ticket, *, at: dt.datetime, updated: dt.datetime | None = None) -> None:
        Ticket.objects.filter(pk=ticket.pk).update(created_at=at, updated_at=updated or at)

    def _close_past_months(self, *, leave_open: bool) -> None:
        """Close the ended months as the schedule would have; the months before the last are
        exported and invoiced, the last one waits for finance's export (with a credit), or
        stays open to be closed by hand."""
        months = periods_to_close()
        last = months[-1] if months else None
        for month in months:
            if month == last and leave_open:
                self.stdout.write(f"{period_label(month)} is left open for you to close.")
                continue
            # as the schedule does it, at 00:05 on the 1st of the next month
            period_close(month=month, now=_moment(period_next(month), 0, 5))
        finance = User.objects.get(username="fiona")
        for month in months[:-1]:
            items = list(BillableItem.objects.filter(period=month).values_list("pk", flat=True))
            for status in (ItemStatus.EXPORTED, ItemStatus.INVOICED):
                billable_items_status_set(item_ids=items, status=status, actor=finance)
        if last is not None:
            acme = Client.objects.get(name="ACME Ltd")
            adjustment_create(
                client=acme,
                month=last,
                amount=Decimal("-60.00"),
                reason="Goodwill credit: one hour of the mail outage",
                actor=finance,
            )

    def _print_logins(self) -> None:
        self.stdout.write(f"\nDemo logins (password for all: {DEMO_PASSWORD})")
        for username, role, where in LOGINS:
            self.stdout.write(f"  {username:<6} {role:<34} {where}")
        self.stdout.write(self._mailbox_line())

    @staticmethod
    def _mailbox_line() -> str:
        if settings.MAIL_INTAKE_HOST:
            where = f"{settings.MAIL_INTAKE_USER}@{settings.MAIL_INTAKE_HOST}"
            return f"\nMailbox intake: on, reading {where} (docs/email.md)."
        return (
            "\nMailbox intake: off. To turn e-mail into tickets, set MAIL_INTAKE_HOST,"
            " MAIL_INTAKE_USER and MAIL_INTAKE_PASSWORD and run `manage.py mail_fetch` or the"
            " beat (docs/email.md)."
        )
