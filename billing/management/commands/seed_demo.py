"""manage.py seed_demo: a small, believable data set to click through, with printed logins."""

import datetime as dt
import random
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from djmoney.money import Money

from billing.selectors.periods import periods_to_close
from billing.services.rollup import period_close
from customers.models import Client, ClientUser
from packages.models import BillingMode, InvoiceAction, PackagePrice, SupportPackage
from packages.services import subscription_create
from supportbilling.periods import local_today, period_of, period_previous
from supportbilling.roles import FINANCE_GROUP, OPERATORS_GROUP
from tickets.models import MessageKind, Ticket, TicketMessage
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

SUBJECTS = [
    "Mail server down",
    "Website slow since this morning",
    "Please renew our SSL certificate",
    "Cannot log in to the control panel",
    "Move our site to the new server",
    "Backup restore request",
    "DNS change for shop.example.test",
]


class Command(BaseCommand):
    help = "Create demo packages, clients, users, tickets and time, and close past months."

    def handle(self, *args: object, **options: object) -> None:
        if User.objects.filter(username="admin").exists():
            self.stdout.write("Demo data is already there.")
        else:
            with transaction.atomic():
                self._seed()
            self._close_past_months()
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
                for _ in range(rng.randint(3, 6)):
                    ticket = Ticket.objects.create(
                        client=client, subscription=subscription, subject=rng.choice(SUBJECTS)
                    )
                    TicketMessage.objects.create(
                        ticket=ticket,
                        author=portal_user,
                        kind=MessageKind.CLIENT_REPLY,
                        body="Hello, could you please have a look? Thank you.",
                    )
                    TicketMessage.objects.create(
                        ticket=ticket,
                        author=rng.choice(operators),
                        kind=MessageKind.OPERATOR_REPLY,
                        body="We are on it and will report back shortly.",
                    )
                    for _ in range(rng.randint(1, 4)):
                        work_date = start + dt.timedelta(days=rng.randint(0, (today - start).days))
                        hours = Decimal(rng.randint(1, 10)) * Decimal("0.25")
                        if subscription.package.billing_mode == BillingMode.ONE_TIME:
                            hours = Decimal("0.50")
                        time_entry_log(
                            ticket=ticket,
                            operator=rng.choice(operators),
                            hours=hours,
                            work_date=work_date,
                            note=rng.choice(WORK),
                        )
            # A busy month for the Gold client, so overtime shows up.
            if client.name == "ACME Ltd":
                busy = Ticket.objects.create(
                    client=client,
                    subscription=subscriptions[0],
                    subject="Migration to the new cluster",
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

    def _close_past_months(self) -> None:
        for month in periods_to_close():
            period_close(month=month)

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
