"""Shared parts of the web benchmarks (bench/portal.py, bench/operator.py, bench/load.py).

- ``django_setup``: the project's settings on the benchmark database (``DATABASE_URL``).
- ``seed_client``: one client with 3 subscriptions, 200 tickets and 24 closed months of history
  (entries, billable items and closed BillingPeriod rows written in bulk, not through the
  rollup, for speed), a portal login and an operator login. Idempotent: a second run reuses it.
- ``Gunicorn``: ``gunicorn supportbilling.wsgi -w 4`` on a free loopback port, stopped on exit.
- ``login``: a session cookie through the login form, as a browser gets it.
- ``measure``: a closed-loop load generator in pure Python (processes x threads, one request
  at a time per thread, new connection per request like a browser behind gunicorn's sync
  workers), bounded in time; requests per second, p50/p99 latency and errors.

For a benchmark database only: it writes closed months.
"""

import datetime as dt
import http.client
import multiprocessing
import os
import random
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench-password-2026"
CLIENT_USER = "bench-client"
OPERATOR_USER = "bench-operator"
CLIENT_NAME = "Bench portal client"
TICKETS = 200
CLOSED_MONTHS = 24
ENTRIES_PER_SUBSCRIPTION_MONTH = 30
ENTRIES_THIS_MONTH = 40


def bench_env() -> dict[str, str]:
    """The environment of gunicorn and of this process: production-like, HTTP on loopback."""
    env = dict(os.environ)
    if not env.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL benchmark database (postgres://...).")
    env.setdefault("SECRET_KEY", "bench-secret-key-not-for-production")
    env["DEBUG"] = "0"
    env["SECURE_SSL_REDIRECT"] = "0"
    env["SECURE_COOKIES"] = "0"  # plain HTTP on 127.0.0.1: the cookies must come back
    env.setdefault("LOG_LEVEL", "WARNING")
    return env


def django_setup() -> None:
    os.environ.update(bench_env())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportbilling.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


# --- Data ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    client_id: int
    subscription_ids: list[int]
    ticket_ids: list[int]


def _months_before(month: dt.date, count: int) -> list[dt.date]:
    from supportbilling.periods import period_previous

    months = []
    for _ in range(count):
        month = period_previous(month)
        months.append(month)
    return sorted(months)


def _package(name: str, mode: str, hours: str, fee: str, rate: str):
    from djmoney.money import Money

    from packages.models import PackagePrice, SupportPackage

    package, created = SupportPackage.objects.get_or_create(
        name=name, defaults={"billing_mode": mode, "included_hours": Decimal(hours)}
    )
    if created:
        PackagePrice.objects.create(
            package=package, fee=Money(fee, "EUR"), hourly_rate=Money(rate, "EUR")
        )
    return package


def users_seed() -> None:
    """The portal user of the bench client (created by ``seed_client``) and an operator."""
    from django.contrib.auth.models import Group, User

    from supportbilling.roles import OPERATORS_GROUP

    if not User.objects.filter(username=OPERATOR_USER).exists():
        operator = User.objects.create_user(
            OPERATOR_USER, "operator@bench.test", PASSWORD, is_staff=True, first_name="Olga"
        )
        operator.groups.add(Group.objects.get(name=OPERATORS_GROUP))


def seed_client(
    name: str = CLIENT_NAME,
    username: str = CLIENT_USER,
    *,
    extra_subscriptions: int = 0,
    closed_months: int = CLOSED_MONTHS,
) -> Seeded:
    """The client of the portal benchmark; reused when it is already there. Another ``name``
    and ``username`` seed a variant of it for the dashboard's scaling: ``extra_subscriptions``
    more Gold subscriptions (each with the same history as the first ones), or a history of
    ``closed_months`` instead of 24."""
    from django.contrib.auth.models import User
    from django.db import connection, transaction

    from billing.models import BillableItem, BilledTerms
    from customers.models import Client, ClientUser
    from packages.models import BillingMode, BillingPeriod, PeriodStatus, Subscription
    from supportbilling.periods import period_current, period_last_day
    from tickets.models import MessageKind, Ticket, TicketMessage, TicketStatus, TimeEntry

    users_seed()
    client = Client.objects.filter(name=name).first()
    if client is not None:
        _current_month_entries(client.pk)
        return Seeded(
            client_id=client.pk,
            subscription_ids=list(
                Subscription.objects.filter(client=client)
                .order_by("pk")
                .values_list("pk", flat=True)
            ),
            ticket_ids=list(
                Ticket.objects.filter(client=client).order_by("pk").values_list("pk", flat=True)
            ),
        )

    started = time.perf_counter()
    rng = random.Random(6)
    current = period_current()
    months = _months_before(current, closed_months)
    operator = User.objects.get(username=OPERATOR_USER)
    with transaction.atomic():
        gold = _package("Bench Gold", BillingMode.RECURRING, "10", "500.00", "60.00")
        silver = _package("Bench Silver", BillingMode.RECURRING, "4", "220.00", "65.00")
        block = _package("Bench 5000 hours block", BillingMode.ONE_TIME, "5000", "90000.00", "0")
        client = Client.objects.create(name=name, email="billing@bench.test", currency="EUR")
        user = User.objects.create_user(username, f"{username}@bench.test", PASSWORD)
        ClientUser.objects.create(user=user, client=client)
        subscriptions = [
            Subscription.objects.create(
                client=client,
                package=package,
                start_date=months[0],
                bucket_hours=package.included_hours if package is block else None,
            )
            for package in (gold, silver, block, *[gold] * extra_subscriptions)
        ]
        tickets = Ticket.objects.bulk_create(
            Ticket(
                client=client,
                subscription=subscriptions[n % len(subscriptions)],
                subject=f"Bench ticket {n}",
                status=TicketStatus.CLOSED if n < TICKETS - 30 else TicketStatus.OPEN,
            )
            for n in range(TICKETS)
        )
        TicketMessage.objects.bulk_create(
            TicketMessage(ticket=ticket, author=author, kind=kind, body=body)
            for ticket in tickets
            for author, kind, body in (
                (user, MessageKind.CLIENT_REPLY, "Hello, could you please have a look?"),
                (operator, MessageKind.OPERATOR_REPLY, "Done, please check."),
            )
        )
        by_subscription = {
            sub.pk: [t for t in tickets if t.subscription_id == sub.pk] for sub in subscriptions
        }
        closed_at = dt.datetime.now(dt.UTC)
        entries, items, terms = [], [], []
        for month in months:
            days = (period_last_day(month) - month).days
            for subscription in subscriptions:
                month_hours = Decimal(0)
                for _ in range(ENTRIES_PER_SUBSCRIPTION_MONTH):
                    hours = Decimal(rng.randint(1, 8)) * Decimal("0.25")
                    month_hours += hours
                    entries.append(
                        TimeEntry(
                            ticket=rng.choice(by_subscription[subscription.pk]),
                            subscription=subscription,
                            operator=operator,
                            hours=hours,
                            work_date=month + dt.timedelta(days=rng.randint(0, days)),
                            note="Checked the logs and restarted the service",
                        )
                    )
                items += _month_items(subscription, month, month_hours, months)
                terms += _month_terms(subscription, month, month_hours)
        for _ in range(ENTRIES_THIS_MONTH):
            subscription = rng.choice(subscriptions)
            entries.append(
                TimeEntry(
                    ticket=rng.choice(by_subscription[subscription.pk]),
                    subscription=subscription,
                    operator=operator,
                    hours=Decimal(rng.randint(1, 8)) * Decimal("0.25"),
                    work_date=current,
                    note="Work in progress",
                )
            )
        TimeEntry.objects.bulk_create(entries, batch_size=2000)
        BillableItem.objects.bulk_create(items, batch_size=2000)
        BilledTerms.objects.bulk_create(terms, batch_size=2000)
        for month in months:
            BillingPeriod.objects.get_or_create(  # a closed month cannot change
                month=month, defaults={"status": PeriodStatus.CLOSED, "closed_at": closed_at}
            )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(
        f"seeded {name!r}: {len(subscriptions)} subscriptions, {len(tickets)} tickets, "
        f"{len(entries):,} "
        f"entries, {len(items)} billable items, {len(months)} closed months "
        f"in {time.perf_counter() - started:.1f} s"
    )
    return seed_client(name, username)


def _current_month_entries(client_id: int) -> None:
    """A later month than the seed's: give the dashboard its month's entries again."""
    from django.contrib.auth.models import User

    from supportbilling.periods import period_current
    from tickets.models import Ticket, TimeEntry

    current = period_current()
    if TimeEntry.objects.filter(ticket__client_id=client_id, work_date__gte=current).exists():
        return
    rng = random.Random(6)
    operator = User.objects.get(username=OPERATOR_USER)
    tickets = list(Ticket.objects.filter(client_id=client_id, subscription__isnull=False))
    TimeEntry.objects.bulk_create(
        TimeEntry(
            ticket=ticket,
            subscription_id=ticket.subscription_id,
            operator=operator,
            hours=Decimal(rng.randint(1, 8)) * Decimal("0.25"),
            work_date=current,
            note="Work in progress",
        )
        for ticket in rng.sample(tickets, ENTRIES_THIS_MONTH)
    )


def _month_items(subscription, month: dt.date, month_hours: Decimal, months: list[dt.date]):
    from djmoney.money import Money

    from billing.models import BillableItem, ItemKind, ItemStatus, ItemUnit
    from packages.models import BillingMode, InvoiceAction

    package = subscription.package
    status = ItemStatus.INVOICED if month < months[-3] else ItemStatus.EXPORTED
    common = {
        "client_id": subscription.client_id,
        "subscription": subscription,
        "period": month,
        "invoice_action": InvoiceAction.NEXT_INVOICE,
        "status": status,
    }
    if package.billing_mode == BillingMode.ONE_TIME:
        if month != months[0]:
            return []
        price = Money("90000.00", "EUR")
        return [
            BillableItem(
                kind=ItemKind.ONE_TIME,
                description=package.name,
                quantity=1,
                unit_price=price,
                amount=price,
                **common,
            )
        ]
    fee, rate = _month_price(package)
    items = [
        BillableItem(
            kind=ItemKind.FEE,
            description=package.name,
            quantity=1,
            unit_price=fee,
            amount=fee,
            **common,
        )
    ]
    overtime = month_hours - package.included_hours
    if overtime > 0:
        items.append(
            BillableItem(
                kind=ItemKind.OVERTIME,
                description=f"{package.name}: overtime",
                unit=ItemUnit.HOURS,
                quantity=overtime,
                unit_price=rate,
                amount=rate * overtime,
                **common,
            )
        )
    return items


def _month_price(package):
    """The EUR fee and hourly rate of Bench Gold (10 h) or Bench Silver."""
    from djmoney.money import Money

    gold = package.included_hours == 10
    return (
        Money("500.00" if gold else "220.00", "EUR"),
        Money("60.00" if gold else "65.00", "EUR"),
    )


def _month_terms(subscription, month: dt.date, month_hours: Decimal):
    """The terms the close stores for a recurring month, with its hours (to the quarter hour
    per entry, so billed as logged); a bucket's are stored when it is bought."""

    from billing.models import BilledTerms
    from packages.models import BillingMode

    package = subscription.package
    if package.billing_mode != BillingMode.RECURRING:
        return []
    fee, rate = _month_price(package)
    return [
        BilledTerms(
            subscription=subscription,
            month=month,
            billing_mode=BillingMode.RECURRING,
            included_hours=package.included_hours,
            fee=fee,
            hourly_rate=rate,
            logged_hours=month_hours,
            billed_hours=month_hours,
            no_charge_hours=Decimal(0),
        )
    ]


# --- Server -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    """``gunicorn supportbilling.wsgi -w 4`` on 127.0.0.1, up until the block ends."""

    def __init__(self, workers: int = 4) -> None:
        self.port = free_port()
        self.workers = workers
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "Gunicorn":
        subprocess.run(  # whitenoise's manifest: pages with {% static %} need it, DEBUG off
            [sys.executable, "manage.py", "collectstatic", "--no-input", "-v0"],
            cwd=ROOT,
            env=bench_env(),
            check=True,
        )
        command = [
            str(Path(sys.executable).with_name("gunicorn")),
            "supportbilling.wsgi",
            f"-w{self.workers}",
            f"-b127.0.0.1:{self.port}",
            "--log-level=warning",
        ]
        print("$ " + " ".join(command))
        self.process = subprocess.Popen(command, cwd=ROOT, env=bench_env())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if get(self.base, "/healthz/")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        self.__exit__()
        sys.exit("gunicorn did not answer /healthz/ within 30 s")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# --- HTTP ---------------------------------------------------------------------------------


def request(
    base: str, method: str, path: str, *, cookies: str = "", body: dict | None = None
) -> tuple[int, dict[str, str], bytes]:
    parsed = urllib.parse.urlsplit(base)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    headers = {"Cookie": cookies} if cookies else {}
    payload = None
    if body is not None:
        payload = urllib.parse.urlencode(body)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def get(base: str, path: str, cookies: str = "") -> tuple[int, dict[str, str], bytes]:
    return request(base, "GET", path, cookies=cookies)


def login(base: str, login_path: str, username: str) -> tuple[str, str]:
    """Sign in through the form; the Cookie header (session and CSRF) and the CSRF token."""
    import requests

    session = requests.Session()
    session.get(base + login_path, timeout=30).raise_for_status()
    token = session.cookies["csrftoken"]
    response = session.post(
        base + login_path,
        data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token},
        allow_redirects=False,
        timeout=30,
    )
    if response.status_code != 302 or "sessionid" not in session.cookies:
        sys.exit(f"login of {username} failed: {response.status_code}")
    cookies = "; ".join(f"{name}={value}" for name, value in session.cookies.items())
    return cookies, session.cookies["csrftoken"]


@dataclass(frozen=True)
class Result:
    name: str
    requests: int
    errors: int
    seconds: float
    latencies: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000 if ordered else 0.0

    def line(self) -> str:
        return (
            f"{self.name:<34} {self.rps:8.1f} req/s   p50 {self.percentile(0.50):7.1f} ms   "
            f"p99 {self.percentile(0.99):7.1f} ms   {self.requests:6d} requests  "
            f"{self.errors} errors"
        )


def _worker(job: dict, threads: int, out: "multiprocessing.Queue") -> None:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = job["start"] + job["seconds"]

    def loop() -> None:
        local, bad = [], 0
        while time.time() < deadline:
            started = time.perf_counter()
            try:
                status, _, _ = request(
                    job["base"],
                    job["method"],
                    job["path"],
                    cookies=job["cookies"],
                    body=job["body"],
                )
                ok = status == job["expect"]
            except OSError:
                ok = False
            local.append(time.perf_counter() - started)
            bad += not ok
        with lock:
            latencies.extend(local)
            errors[0] += bad

    while time.time() < job["start"]:
        time.sleep(0.005)
    pool = [threading.Thread(target=loop) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    out.put((latencies, errors[0]))


def measure(
    name: str,
    base: str,
    path: str,
    *,
    cookies: str = "",
    method: str = "GET",
    body: dict | None = None,
    expect: int = 200,
    concurrency: int = 16,
    seconds: float = 20.0,
    processes: int = 4,
) -> Result:
    """``concurrency`` clients, each sending the next request when the last one is answered,
    for ``seconds``; spread over ``processes`` so the generator is not held by one GIL."""
    job = {
        "base": base,
        "path": path,
        "cookies": cookies,
        "method": method,
        "body": body,
        "expect": expect,
        "start": time.time() + 0.5,
        "seconds": seconds,
    }
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    workers = [
        context.Process(target=_worker, args=(job, concurrency // processes, out))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    latencies: list[float] = []
    errors = 0
    for _ in workers:
        got, bad = out.get(timeout=seconds + 120)
        latencies += got
        errors += bad
    for worker in workers:
        worker.join()
    return Result(name, len(latencies), errors, seconds, latencies)


def machine() -> str:
    import platform

    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0]
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    prepared = "on" if connection.features.uses_server_side_binding else "off"
    return (
        f"{os.cpu_count()} CPUs, {memory:.0f} GiB RAM, Python {platform.python_version()}, "
        f"PostgreSQL {pg}, DB_PREPARED {prepared}"
    )


OPERATOR_CLIENT_NAME = "Bench operator client"
BUSY_SUBJECT = "Bench busy ticket: 50 messages, 100 entries"  # not in the load test's search
SAVE_SUBJECT = "Bench operator: save time here"  # the load test's operators work on these
SAVE_TARGET_SUBJECT = "Bench save target of bench/operator.py"  # grows by every save measured
SAVE_TICKETS = 20


def seed_operator_tickets() -> tuple[int, int, list[int]]:
    """The operator benchmark's client, apart from the portal's so that saving time does not
    grow the portal's dashboard: a recurring Gold subscription (a save is never refused), one
    ticket with 50 messages and 100 entries to view, the ticket bench/operator.py saves time
    on, and the load test's open tickets (found by the admin search "Bench operator:").
    Returns the busy ticket, the save target and the load test's tickets."""
    from django.contrib.auth.models import User
    from django.db import transaction

    from customers.models import Client
    from packages.models import BillingMode, Subscription
    from supportbilling.periods import period_current, period_last_day, period_previous
    from tickets.models import MessageKind, Ticket, TicketMessage, TimeEntry

    users_seed()
    client = Client.objects.filter(name=OPERATOR_CLIENT_NAME).first()
    if client is not None:
        tickets = Ticket.objects.filter(client=client).order_by("pk")
        busy = tickets.get(subject=BUSY_SUBJECT)
        target, _ = Ticket.objects.get_or_create(
            client=client,
            subject=SAVE_TARGET_SUBJECT,
            defaults={"subscription_id": busy.subscription_id},
        )
        return (
            busy.pk,
            target.pk,
            list(tickets.filter(subject=SAVE_SUBJECT).values_list("pk", flat=True)),
        )
    operator = User.objects.get(username=OPERATOR_USER)
    current = period_current()
    with transaction.atomic():
        gold = _package("Bench Gold", BillingMode.RECURRING, "10", "500.00", "60.00")
        client = Client.objects.create(
            name=OPERATOR_CLIENT_NAME, email="ops@bench.test", currency="EUR"
        )
        subscription = Subscription.objects.create(
            client=client, package=gold, start_date=period_previous(current)
        )
        busy = Ticket.objects.create(client=client, subscription=subscription, subject=BUSY_SUBJECT)
        target = Ticket.objects.create(
            client=client, subscription=subscription, subject=SAVE_TARGET_SUBJECT
        )
        saves = Ticket.objects.bulk_create(
            Ticket(client=client, subscription=subscription, subject=SAVE_SUBJECT)
            for _ in range(SAVE_TICKETS)
        )
        TicketMessage.objects.bulk_create(
            TicketMessage(
                ticket=busy,
                author=operator if n % 2 else None,
                kind=MessageKind.OPERATOR_REPLY if n % 2 else MessageKind.CLIENT_REPLY,
                body=f"Message {n}: the mail queue is growing again, see the attached log. " * 3,
            )
            for n in range(50)
        )
        days = (period_last_day(current) - current).days
        TimeEntry.objects.bulk_create(
            TimeEntry(
                ticket=busy,
                subscription=subscription,
                operator=operator,
                hours="0.25",
                work_date=current + dt.timedelta(days=n % (days + 1)),
                note=f"Entry {n}: looked at the queue",
            )
            for n in range(100)
        )
    return busy.pk, target.pk, [ticket.pk for ticket in saves]


NOISE_SQL = [
    """INSERT INTO customers_client (name, email, currency, active, created_at)
       SELECT 'Bench other client ' || n, 'other' || n || '@bench.test', 'EUR', true, now()
       FROM generate_series(1, %(clients)s) AS n""",
    """INSERT INTO packages_subscription (client_id, package_id, status, start_date, created_at)
       SELECT id, %(package)s, 'active', %(start)s, now() FROM customers_client
       WHERE name LIKE 'Bench other client %%'""",
    """INSERT INTO tickets_ticket (client_id, subscription_id, subject, status, priority,
                                  track_time, created_at, updated_at)
       SELECT s.client_id, s.id, 'Other ticket ' || n, 'open', 'normal', true, now(), now()
       FROM packages_subscription s
       JOIN customers_client c ON c.id = s.client_id AND c.name LIKE 'Bench other client %%'
       CROSS JOIN generate_series(1, 10) AS n""",
    """INSERT INTO tickets_timeentry (ticket_id, subscription_id, operator_id, hours, work_date,
                                     note, no_charge, no_charge_reason, created_at, updated_at)
       SELECT t.id, t.subscription_id, %(operator)s, 0.25 * (1 + n %% 8),
              %(month)s + (n %% %(days)s), 'Other work', false, '', now(), now()
       FROM tickets_ticket t
       JOIN customers_client c ON c.id = t.client_id AND c.name LIKE 'Bench other client %%'
       CROSS JOIN generate_series(1, %(per_ticket)s) AS n""",
]


def seed_other_clients(*, entries: int) -> None:
    """Other clients' time in the current month (10 tickets each, ``entries`` in all), so the
    portal's and the workspace's queries run among a month at the design's scale (170,000
    entries a month). Once: a second run with other clients already there does nothing."""
    from django.contrib.auth.models import User
    from django.db import connection, transaction

    from customers.models import Client
    from packages.models import BillingMode
    from supportbilling.periods import period_current, period_last_day

    if not entries or Client.objects.filter(name__startswith="Bench other client ").exists():
        return
    started = time.perf_counter()
    month = period_current()
    per_ticket = 17
    clients = max(1, entries // (10 * per_ticket))
    params = {
        "clients": clients,
        "package": _package("Bench Gold", BillingMode.RECURRING, "10", "500.00", "60.00").pk,
        "start": month,
        "operator": User.objects.get(username=OPERATOR_USER).pk,
        "month": month,
        "days": (period_last_day(month) - month).days + 1,
        "per_ticket": per_ticket,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        for sql in NOISE_SQL:
            cursor.execute(sql, params)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(
        f"seeded {clients:,} other clients with {clients * 10 * per_ticket:,} entries this month "
        f"in {time.perf_counter() - started:.1f} s"
    )
