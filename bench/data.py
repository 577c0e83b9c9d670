"""A large, believable data set for the benchmarks (``bench/seed.py``), written fast:
COPY on PostgreSQL, multi-row inserts elsewhere. Never used by the product itself.

The shape follows the scale docs/performance.md measures: about 1.2 subscriptions per client
(mostly recurring, some one-time buckets), prices in every configured currency, a skewed
spread of time entries over the subscriptions of one month (most clients log nothing, a few
log a lot and run into overtime), in quarter hours. Rows carry explicit ids, so one pass
builds every foreign key.
"""

import datetime as dt
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import accumulate
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.color import no_style
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone
from djmoney.models.fields import MoneyField
from djmoney.money import Money

from billing.models import BillableItem, BilledTerms, UsageAlert
from customers.models import Client, ClientUser
from packages.models import (
    BillingIncrement,
    BillingMode,
    BillingPeriod,
    BillingRounding,
    InvoiceAction,
    PackagePrice,
    PeriodStatus,
    Subscription,
    SupportPackage,
)
from supportbilling.periods import period_last_day, period_next, period_of, period_previous
from tickets.models import AuditEvent, Ticket, TicketMessage, TimeEntry, TimeTimer

OPERATORS = 50
HISTORY_MONTHS = 36  # subscriptions started up to three years before the month
BENCH_OPERATOR_PREFIX = "bench-operator-"

# Rough exchange rates from EUR, so the price lists look like real ones.
RATES = {"EUR": "1", "USD": "1.10", "GBP": "0.86", "PLN": "4.30", "CHF": "0.95", "JPY": "160"}
CURRENCY_WEIGHTS = {"EUR": 50, "USD": 25, "GBP": 15, "PLN": 10}

# name, billing mode, included hours, monthly fee and hourly rate in EUR, share of subscriptions
PACKAGES = [
    ("Bronze", BillingMode.RECURRING, "2", "90.00", "70.00", 25),
    ("Silver", BillingMode.RECURRING, "4", "220.00", "65.00", 25),
    ("Gold", BillingMode.RECURRING, "10", "500.00", "60.00", 18),
    ("Platinum", BillingMode.RECURRING, "20", "950.00", "55.00", 6),
    ("Pay per hour", BillingMode.RECURRING, "0", "0.00", "75.00", 18),
    ("10 hours block", BillingMode.ONE_TIME, "10", "600.00", "0.00", 5),
    ("20 hours block", BillingMode.ONE_TIME, "20", "1100.00", "0.00", 3),
]
# Quarter hours from 0.25 h to 8 h, short pieces of work far more often than long ones.
HOURS = [Decimal(quarters) / 4 for quarters in range(1, 33)]
HOURS_CUM_WEIGHTS = list(accumulate(1000 // (quarters + 2) for quarters in range(1, 33)))
# Share of the month's subscriptions by how much time they get: none, some, busy, very busy.
WORKLOAD = [(0, 60), (1, 30), (5, 8), (20, 2)]
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
]

# The tables written with COPY, their columns in the order the rows are built.
COLUMNS = {
    "customers_client": ("id", "name", "email", "currency", "active", "created_at"),
    "packages_subscription": (
        "id",
        "client_id",
        "package_id",
        "status",
        "start_date",
        "end_date",
        "bucket_hours",
        "created_at",
    ),
    "tickets_ticket": (
        "id",
        "client_id",
        "subscription_id",
        "subject",
        "status",
        "priority",
        "track_time",
        "created_at",
        "updated_at",
    ),
    "tickets_timeentry": (
        "id",
        "ticket_id",
        "subscription_id",
        "operator_id",
        "hours",
        "work_date",
        "note",
        "no_charge",
        "no_charge_reason",
        "created_at",
        "updated_at",
    ),
    "billing_billableitem": (
        "id",
        "client_id",
        "subscription_id",
        "period",
        "kind",
        "description",
        "unit",
        "quantity",
        "currency",
        "unit_price",
        "amount",
        "invoice_action",
        "status",
        "created_at",
        "updated_at",
    ),
    "billing_billedterms": (
        "subscription_id",
        "month",
        "billing_mode",
        "included_hours",
        "currency",
        "fee",
        "hourly_rate",
        "billing_increment",
        "billing_rounding",
        "billing_minimum",
        "created_at",
    ),
}
# Deleted (children first) by ``--flush``: everything the generator writes, and what the
# product derives from it.
FLUSH_MODELS = [
    UsageAlert,
    BillableItem,
    BilledTerms,
    AuditEvent,
    TimeTimer,
    TimeEntry,
    TicketMessage,
    Ticket,
    BillingPeriod,
    Subscription,
    PackagePrice,
    SupportPackage,
    ClientUser,
    Client,
]
FLUSH_TABLES = [
    "billing_usagealert",
    "billing_billableitem",
    "billing_billedterms",
    "tickets_auditevent",
    "tickets_timetimer",
    "tickets_timeentry",
    "tickets_ticketmessage",
    "tickets_ticket",
    "packages_billingperiod",
    "packages_subscription",
    "packages_packageprice",
    "packages_supportpackage",
    "customers_clientuser",
    "customers_client",
]

MODELS = {
    "customers_client": Client,
    "packages_subscription": Subscription,
    "tickets_ticket": Ticket,
    "tickets_timeentry": TimeEntry,
    "billing_billableitem": BillableItem,
    "billing_billedterms": BilledTerms,
}


@dataclass
class SeedResult:
    month: dt.date
    clients: int = 0
    subscriptions: int = 0
    tickets: int = 0
    entries: int = 0
    hours: Decimal = Decimal("0")
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Package:
    id: int
    name: str
    billing_mode: str
    included_hours: Decimal
    invoice_action: str
    fees: dict[str, Decimal]
    rates: dict[str, Decimal]


def bench_flush() -> None:
    """Delete every client, subscription, ticket, entry, item and period: bench databases only."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # Inside a transaction that wrote rows (a test), deferred foreign key checks
            # would still be pending, and TRUNCATE refuses to run then.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"TRUNCATE {', '.join(FLUSH_TABLES)} RESTART IDENTITY CASCADE")
    else:
        for model in FLUSH_MODELS:
            model._default_manager.all()._raw_delete(connection.alias)
    User.objects.filter(username__startswith=BENCH_OPERATOR_PREFIX).delete()


def _operators() -> list[int]:
    existing = list(
        User.objects.filter(username__startswith=BENCH_OPERATOR_PREFIX).values_list("pk", flat=True)
    )
    if len(existing) >= OPERATORS:
        return existing[:OPERATORS]
    users = User.objects.bulk_create(
        User(
            username=f"{BENCH_OPERATOR_PREFIX}{number:02d}",
            email=f"{BENCH_OPERATOR_PREFIX}{number:02d}@example.test",
            password="!",  # unusable: nobody logs in as a bench operator
            is_staff=True,
        )
        for number in range(len(existing), OPERATORS)
    )
    if connection.vendor != "postgresql":  # SQLite's bulk_create may not return ids
        users = list(User.objects.filter(username__startswith=BENCH_OPERATOR_PREFIX))
    group = Group.objects.filter(name="Operators").first()
    if group is not None:
        for user in users:
            user.groups.add(group)
    return list(
        User.objects.filter(username__startswith=BENCH_OPERATOR_PREFIX).values_list("pk", flat=True)
    )


def _packages() -> list[tuple[_Package, int]]:
    """The catalogue, priced in every configured currency; with each package's share."""
    packages = []
    for name, mode, included, fee, rate, share in PACKAGES:
        package = SupportPackage.objects.create(
            name=f"{name} (bench)",
            billing_mode=mode,
            included_hours=Decimal(included),
            invoice_action=InvoiceAction.NEXT_INVOICE,
        )
        fees = {}
        rates = {}
        prices = []
        for currency in settings.CURRENCIES:
            factor = Decimal(RATES.get(currency, "1"))
            fees[currency] = (Decimal(fee) * factor).quantize(Decimal("1.00"))
            rates[currency] = (Decimal(rate) * factor).quantize(Decimal("1.00"))
            prices.append(
                PackagePrice(
                    package=package,
                    fee=Money(fees[currency], currency),
                    hourly_rate=Money(rates[currency], currency),
                )
            )
        PackagePrice.objects.bulk_create(prices)
        packages.append(
            (
                _Package(
                    id=package.pk,
                    name=package.name,
                    billing_mode=mode,
                    included_hours=package.included_hours,
                    invoice_action=package.invoice_action,
                    fees=fees,
                    rates=rates,
                ),
                share,
            )
        )
    return packages


def _next_id(table: str) -> int:
    return (MODELS[table]._default_manager.aggregate(last=Max("id"))["last"] or 0) + 1


def _write(table: str, rows: Iterable[Sequence[Any]]) -> int:
    """COPY the rows into ``table`` on PostgreSQL; bulk_create elsewhere."""
    columns = COLUMNS[table]
    model = MODELS[table]
    count = 0
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # Django's wrapper hides psycopg's cursor; COPY needs the real one.
            with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    count += 1
            for sql in connection.ops.sequence_reset_sql(no_style(), [model]):
                cursor.execute(sql)
        return count
    money = [f.name for f in model._meta.concrete_fields if isinstance(f, MoneyField)]
    chunk = []
    for row in rows:
        values = dict(zip(columns, row, strict=True))
        for name in money:
            values[name] = Money(values[name], values["currency"])
        chunk.append(model(**values))
        if len(chunk) == 2000:
            count += len(model._default_manager.bulk_create(chunk))
            chunk = []
    return count + len(model._default_manager.bulk_create(chunk))


def _month_bounds(start: dt.date, end: dt.date | None, first: dt.date, last: dt.date):
    """The days of [first, last] on which the subscription runs, or None."""
    low, high = max(start, first), min(end or last, last)
    return (low, high) if low <= high else None


@transaction.atomic
def bench_seed(
    *, subscriptions: int, entries: int, month: dt.date | None = None, seed: int = 6
) -> SeedResult:
    """Write ``subscriptions`` subscriptions (and their clients, tickets and one-time items)
    and ``entries`` time entries in ``month`` (default: last month). Every ended month before
    and after ``month`` is marked closed, so the scheduled close finds only ``month`` open."""
    rng = random.Random(seed)
    now = timezone.now()
    month = period_of(month or period_previous(period_of(timezone.localdate(now))))
    first, last = month, period_last_day(month)
    result = SeedResult(month=month)
    operator_ids = _operators()
    packages = _packages()
    package_cum = list(accumulate(share for _, share in packages))
    currencies = [code for code in settings.CURRENCIES]
    currency_cum = list(accumulate(CURRENCY_WEIGHTS.get(code, 5) for code in currencies))
    history_start = month
    for _ in range(HISTORY_MONTHS):
        history_start = period_previous(history_start)
    history_days = (last - history_start).days

    # Clients: about 1.2 subscriptions each; the first subscriptions give every client one.
    client_count = max(1, round(subscriptions / 1.2))
    client_id0 = _next_id("customers_client")
    client_currency = rng.choices(currencies, cum_weights=currency_cum, k=client_count)
    result.clients = _write(
        "customers_client",
        (
            (
                client_id0 + n,
                f"Bench client {n + 1}",
                f"billing{n + 1}@bench.example.test",
                client_currency[n],
                True,
                now,
            )
            for n in range(client_count)
        ),
    )

    # Subscriptions, and the days of the month each one runs (for its time entries).
    subscription_id0 = _next_id("packages_subscription")
    chosen = rng.choices(packages, cum_weights=package_cum, k=subscriptions)
    subscription_rows = []
    one_time_items = []
    one_time_terms = []
    runs_in_month: list[tuple[int, int, dt.date, dt.date, bool]] = []
    for n in range(subscriptions):
        subscription_id = subscription_id0 + n
        client_n = n if n < client_count else rng.randrange(client_count)
        package = chosen[n][0]
        start = history_start + dt.timedelta(days=rng.randrange(history_days + 1))
        end = None
        status = "active"
        if rng.random() < 0.08:  # terminated, some before the month, some during it
            end = start + dt.timedelta(days=rng.randrange(max(1, (last - start).days + 1)))
            status = "terminated"
        elif rng.random() < 0.04:
            status = "suspended"
        is_bucket = package.billing_mode == BillingMode.ONE_TIME
        # What subscription_create stores for a bucket: its size and terms, as bought.
        bucket_hours = package.included_hours if is_bucket else None
        subscription_rows.append(
            (subscription_id, client_id0 + client_n, package.id, status, start, end)
            + (bucket_hours, now)
        )
        currency = client_currency[client_n]
        if is_bucket:
            one_time_terms.append(
                (
                    subscription_id,
                    period_of(start),
                    BillingMode.ONE_TIME.value,
                    package.included_hours,
                    currency,
                    package.fees[currency],
                    package.rates[currency],
                    BillingIncrement.QUARTER.value,  # a bucket is drawn by the hours logged
                    BillingRounding.PER_ENTRY.value,
                    Decimal("0"),
                    now,
                )
            )
            one_time_items.append(
                (
                    client_id0 + client_n,
                    subscription_id,
                    period_of(start),
                    "one_time",
                    f"Support hours package {package.name}",
                    "quantity",
                    Decimal("1.00"),
                    currency,
                    package.fees[currency],
                    package.fees[currency],
                    package.invoice_action,
                    "pending",
                    now,
                    now,
                )
            )
        days = _month_bounds(start, end, first, last)
        if days is not None and status != "suspended":
            one_time = package.billing_mode == BillingMode.ONE_TIME
            runs_in_month.append((subscription_id, client_id0 + client_n, *days, one_time))
    result.subscriptions = _write("packages_subscription", subscription_rows)
    del subscription_rows
    item_id0 = _next_id("billing_billableitem")
    _write(
        "billing_billableitem",
        ((item_id0 + n, *row) for n, row in enumerate(one_time_items)),
    )
    _write("billing_billedterms", one_time_terms)

    # Who works this month, and how much: most subscriptions nothing, a few a lot.
    weights = rng.choices(
        [load for load, _ in WORKLOAD],
        cum_weights=list(accumulate(share for _, share in WORKLOAD)),
        k=len(runs_in_month),
    )
    busy = [
        (run, 1 if run[4] else load)  # a bucket gets little time: it must not run dry
        for run, load in zip(runs_in_month, weights, strict=True)
        if load
    ]
    ticket_id0 = _next_id("tickets_ticket")
    ticket_rows: list[tuple[Any, ...]] = []
    tickets_of: list[list[int]] = []
    for run, load in busy:
        ids = []
        for _ in range(1 + (load >= 5) + 2 * (load >= 20)):
            ids.append(ticket_id0 + len(ticket_rows))
            ticket_rows.append(
                (ids[-1], run[1], run[0], rng.choice(SUBJECTS), "open", "normal", True, now, now)
            )
        tickets_of.append(ids)
    result.tickets = _write("tickets_ticket", ticket_rows)
    del ticket_rows

    entry_id0 = _next_id("tickets_timeentry")
    picks = (
        rng.choices(
            range(len(busy)), cum_weights=list(accumulate(load for _, load in busy)), k=entries
        )
        if busy
        else []
    )
    hours = rng.choices(HOURS, cum_weights=HOURS_CUM_WEIGHTS, k=entries)

    def entry_rows():
        for n, pick in enumerate(picks):
            (subscription_id, _client, low, high, one_time), _ = busy[pick]
            worked = min(hours[n], Decimal("1.00")) if one_time else hours[n]
            result.hours += worked
            yield (
                entry_id0 + n,
                rng.choice(tickets_of[pick]),
                subscription_id,
                rng.choice(operator_ids),
                worked,
                low + dt.timedelta(days=rng.randrange((high - low).days + 1)),
                rng.choice(WORK),
                False,
                "",
                now,
                now,
            )

    result.entries = _write("tickets_timeentry", entry_rows())

    # Every other ended month is closed, as it would be in production.
    ended = []
    cursor_month = history_start
    while period_next(cursor_month) <= period_of(timezone.localdate(now)):
        if cursor_month != month:
            ended.append(
                BillingPeriod(month=cursor_month, status=PeriodStatus.CLOSED, closed_at=now)
            )
        cursor_month = period_next(cursor_month)
    BillingPeriod.objects.bulk_create(ended, ignore_conflicts=True)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            tables = [*COLUMNS, "packages_supportpackage", "packages_packageprice"]
            cursor.execute("ANALYZE " + ", ".join(tables))
    return result
