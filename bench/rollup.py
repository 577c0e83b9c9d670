"""Benchmark of the monthly rollup on PostgreSQL (docs/performance.md). One command:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sbt_bench \
    REDIS_URL=redis://127.0.0.1:6379/5 \
    python bench/rollup.py --subscriptions 120000 --entries 170000

It seeds the database (or reuses a seed of the same size), then closes the month
1. in this process through ``billing.services.period_close`` (wall time, queries issued),
2. as bare SQL: one ``INSERT INTO scratch SELECT ... GROUP BY`` computing the same
   per-subscription totals (the floor any rollup can reach), and checks the totals agree,
3. through the scheduled task ``billing.close_ended_periods`` with 1, 2 and 4 real Celery
   worker processes sharing the batches (needs REDIS_URL).
Between runs the month is reset: its fee/overtime items, stored terms and billing audit are
deleted and the period reopened. For a benchmark database only.

It ends with the ratio of ``period_close`` to the bare SQL (the figure docs/performance.md
quotes).
"""

import argparse
import os
import platform
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import django
from django.conf import settings
from django.db import connection, transaction

ROOT = Path(__file__).resolve().parent.parent

# The same per-subscription totals as the rollup, in one statement: used hours of the month,
# fee, overtime hours and amount, for every recurring subscription the month bills.
BASELINE_SQL = """
INSERT INTO bench_rollup_scratch
SELECT s.id, s.client_id, c.currency, COALESCE(SUM(e.hours), 0) AS used_hours, pr.fee,
       GREATEST(COALESCE(SUM(e.hours), 0) - p.included_hours, 0) AS overtime_hours,
       ROUND(GREATEST(COALESCE(SUM(e.hours), 0) - p.included_hours, 0) * pr.hourly_rate, 2),
       pr.hourly_rate, p.name, p.invoice_action, p.included_hours
FROM packages_subscription s
JOIN customers_client c ON c.id = s.client_id
JOIN packages_supportpackage p ON p.id = s.package_id
JOIN packages_packageprice pr ON pr.package_id = s.package_id AND pr.currency = c.currency
LEFT JOIN tickets_timeentry e
       ON e.subscription_id = s.id AND e.work_date BETWEEN %(first)s AND %(last)s
WHERE p.billing_mode = 'recurring'
  AND ((s.start_date <= %(last)s AND (s.end_date IS NULL OR s.end_date >= %(first)s))
       OR e.id IS NOT NULL)
GROUP BY s.id, c.id, p.id, pr.id
"""
SCRATCH_TABLE = """
CREATE UNLOGGED TABLE bench_rollup_scratch (
    subscription_id bigint, client_id bigint, currency varchar(3), used_hours numeric,
    fee numeric, overtime_hours numeric, overtime_amount numeric, hourly_rate numeric,
    package_name varchar(120), invoice_action varchar(16), included_hours numeric)
"""
# What the rollup writes besides reading, as bare SQL from the scratch totals: the items, the
# terms of every subscription with its hours and one audit row per batch of 2,000
# subscriptions (rolled back, with the foreign keys checked). Plain inserts, as the close
# writes a batch that meets no rows written before.
# Nothing per time entry: an entry is billed once its month is closed.
WRITES_SQL = [
    """
    INSERT INTO billing_billableitem (client_id, subscription_id, period, kind, description,
        unit, quantity, unit_price, amount, currency, invoice_action, status, created_at,
        updated_at)
    SELECT client_id, subscription_id, %(first)s, 'fee',
           'Support package ' || package_name || ' ' || %(label)s, 'quantity', 1, fee, fee,
           currency, invoice_action, 'pending', now(), now()
    FROM bench_rollup_scratch WHERE fee > 0
    UNION ALL
    SELECT client_id, subscription_id, %(first)s, 'overtime',
           'Support overtime ' || %(label)s || ': ' || overtime_hours || ' h x ' || hourly_rate
           || ' ' || currency, 'hours', overtime_hours, hourly_rate, overtime_amount,
           currency, invoice_action, 'pending', now(), now()
    FROM bench_rollup_scratch WHERE overtime_hours > 0
    """,
    """
    INSERT INTO billing_billedterms (subscription_id, month, billing_mode, included_hours, fee,
        hourly_rate, currency, billing_increment, billing_rounding, billing_minimum,
        logged_hours, billed_hours, no_charge_hours, created_at)
    SELECT subscription_id, %(first)s, 'recurring', included_hours, fee, hourly_rate, currency,
           '0.25', 'entry', 0, used_hours, used_hours, 0, now()
    FROM bench_rollup_scratch
    """,
    """
    INSERT INTO tickets_auditevent (action, detail, created_at)
    SELECT 'period_billed',
           jsonb_build_object('period', %(label)s::text, 'first_subscription', MIN(subscription_id),
               'last_subscription', MAX(subscription_id), 'subscriptions_billed', COUNT(*)),
           now()
    FROM (SELECT subscription_id,
                 (ROW_NUMBER() OVER (ORDER BY subscription_id) - 1) / 2000 AS batch
          FROM bench_rollup_scratch WHERE fee > 0 OR overtime_hours > 0) AS billed
    GROUP BY batch
    """,
]


def _process_cpu(pid: int) -> float:
    """CPU seconds of a local process so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _process_tree(pids: list[int]) -> list[int]:
    """The processes and their children (a prefork worker runs its tasks in a child)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            continue
    tree, todo = set(), list(pids)
    while todo:
        pid = todo.pop()
        tree.add(pid)
        todo.extend(
            child for child, parent in parents.items() if parent == pid and child not in tree
        )
    return sorted(tree)


def _cpu_snapshot(pids: list[int]) -> dict[int, float]:
    return {pid: _process_cpu(pid) for pid in pids}


def _cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def backend_cpu() -> float | None:
    """CPU seconds used so far by this connection's PostgreSQL backend (local server only):
    unlike wall time, it does not grow when other work shares the machine."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def backend_cpu_since(before: float | None) -> float | None:
    after = backend_cpu()
    return None if before is None or after is None else after - before


class StatementTimer:
    """Counts the statements Django sends and sums their wall time by the statement's opening
    words (an execute wrapper: no query log kept)."""

    def __init__(self) -> None:
        self.count = 0
        self.seconds: Counter[str] = Counter()

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds[" ".join(sql.split())[:48]] += time.perf_counter() - started

    def breakdown(self, elapsed: float, top: int = 6) -> str:
        """Where the time went: the slowest statements, and the rest (the commits with their
        deferred foreign-key checks, and Python)."""
        statements = sum(self.seconds.values())
        lines = [f"  {seconds:6.2f} s  {label}" for label, seconds in self.seconds.most_common(top)]
        return "\n".join(
            [
                f"period_close in process: {statements:.2f} s in its {self.count} statements, "
                f"the slowest:",
                *lines,
                f"  {elapsed - statements:6.2f} s  outside the statements: the commits (with "
                "the deferred foreign-key checks) and Python",
            ]
        )


def seed_or_reuse(*, subscriptions: int, entries: int, month, flush: bool) -> None:
    from packages.models import Subscription
    from supportbilling.periods import period_label, period_last_day
    from tickets.models import TimeEntry

    first, last = month, period_last_day(month)
    have_subscriptions = Subscription.objects.count()
    have_entries = TimeEntry.objects.filter(work_date__range=(first, last)).count()
    if (have_subscriptions, have_entries) == (subscriptions, entries):
        print(f"Reusing the seed: {subscriptions} subscriptions, {entries} entries.")
        return
    if have_subscriptions and not flush:
        sys.exit(
            f"The database holds {have_subscriptions} subscriptions and {have_entries} entries "
            "in the month, not the size asked for; add --flush to wipe it and seed again."
        )
    from bench.seed import seed

    print(seed(subscriptions=subscriptions, entries=entries, month=period_label(month), flush=True))


def period_reset(month) -> None:
    """Undo the close of ``month`` (benchmark only): items, terms, audit, period."""

    from billing.models import BillableItem, ItemKind
    from packages.models import BillingPeriod
    from supportbilling.periods import period_label
    from tickets.models import AuditAction, AuditEvent

    BillableItem.objects.filter(period=month, kind__in=[ItemKind.FEE, ItemKind.OVERTIME]).delete()
    AuditEvent.objects.filter(
        action=AuditAction.PERIOD_BILLED, detail__period=period_label(month)
    ).delete()
    # The database refuses to delete a closed month (tickets/migrations/0002) and any stored
    # terms (billing/migrations/0005); the benchmark lifts both for its own reset, in one
    # transaction.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("ALTER TABLE packages_billingperiod DISABLE TRIGGER billingperiod_protect")
        BillingPeriod.objects.filter(month=month).delete()
        cursor.execute("ALTER TABLE packages_billingperiod ENABLE TRIGGER billingperiod_protect")
        cursor.execute("ALTER TABLE billing_billedterms DISABLE TRIGGER USER")
        cursor.execute("DELETE FROM billing_billedterms WHERE month = %s", [month])
        cursor.execute("ALTER TABLE billing_billedterms ENABLE TRIGGER USER")
    with connection.cursor() as cursor:
        cursor.execute(
            "VACUUM ANALYZE billing_billableitem, billing_billedterms, tickets_auditevent, "
            "tickets_timeentry, packages_billingperiod"
        )


def measure_in_process(
    month, batch_size: int
) -> tuple[float, StatementTimer, int, float, float | None]:
    """Wall time, the statements, items, CPU of this process and of the PostgreSQL backend."""
    from billing.services.rollup import period_close

    counter = StatementTimer()
    server_before = backend_cpu()
    with connection.execute_wrapper(counter):
        started, cpu_started = time.perf_counter(), time.process_time()
        result = period_close(month=month, batch_size=batch_size)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    server = backend_cpu_since(server_before)
    assert not result.already_closed, "the month was already closed: reset failed"
    return elapsed, counter, result.items_created, cpu, server


def measure_baseline(month, repeat: int = 3) -> tuple[float, int, float | None]:
    """The bare SQL, run ``repeat`` times (the machine is shared): median wall time, rows and
    the median CPU time of the PostgreSQL backend."""
    from supportbilling.periods import period_last_day

    params = {"first": month, "last": period_last_day(month)}
    times, cpus = [], []
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_rollup_scratch")
        cursor.execute(SCRATCH_TABLE)
        for _ in range(repeat):
            cursor.execute("TRUNCATE bench_rollup_scratch")
            cpu_before = backend_cpu()
            started = time.perf_counter()
            cursor.execute(BASELINE_SQL, params)
            times.append(time.perf_counter() - started)
            cpu = backend_cpu_since(cpu_before)
            if cpu is not None:
                cpus.append(cpu)
        middle = repeat // 2
        return sorted(times)[middle], cursor.rowcount, sorted(cpus)[middle] if cpus else None


def measure_writes(month) -> tuple[float, int, float | None]:
    """The rollup's writes as bare SQL from the scratch totals, rolled back: wall and PG CPU."""

    from supportbilling.periods import period_label, period_last_day

    params = {"first": month, "last": period_last_day(month), "label": period_label(month)}
    items = 0
    with transaction.atomic(), connection.cursor() as cursor:
        # The foreign keys are checked at commit (DEFERRABLE INITIALLY DEFERRED); this run is
        # rolled back, so it checks them at once, as the close pays for them at its commits.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cpu_before = backend_cpu()
        started = time.perf_counter()
        for sql in WRITES_SQL:
            cursor.execute(sql, params)
            items = items if sql is not WRITES_SQL[0] else cursor.rowcount
        elapsed = time.perf_counter() - started
        cpu = backend_cpu_since(cpu_before)
        transaction.set_rollback(True)
    return elapsed, items, cpu


def totals_agree(month) -> str:
    """Compare what the rollup billed with the bare SQL's totals, subscription by subscription."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH billed AS (
                SELECT subscription_id,
                       SUM(amount) FILTER (WHERE kind = 'fee') AS fee,
                       SUM(quantity) FILTER (WHERE kind = 'overtime') AS overtime_hours,
                       SUM(amount) FILTER (WHERE kind = 'overtime') AS overtime_amount
                FROM billing_billableitem WHERE period = %s AND kind IN ('fee', 'overtime')
                GROUP BY subscription_id)
            SELECT COUNT(*) FROM bench_rollup_scratch s
            FULL JOIN billed b USING (subscription_id)
            WHERE COALESCE(NULLIF(s.fee, 0), -1) IS DISTINCT FROM COALESCE(b.fee, -1)
               OR COALESCE(NULLIF(s.overtime_hours, 0), -1)
                  IS DISTINCT FROM COALESCE(b.overtime_hours, -1)
               OR COALESCE(NULLIF(s.overtime_amount, 0), -1)
                  IS DISTINCT FROM COALESCE(b.overtime_amount, -1)
            """,
            [month],
        )
        differing = cursor.fetchone()[0]
    return "identical" if differing == 0 else f"{differing} subscriptions DIFFER"


def explain_batch(month, batch_size: int) -> str:
    """EXPLAIN ANALYZE of the rollup_rows query of the first batch."""
    from billing.selectors.rollup import rollup_batches, rollup_rows

    first_id, last_id = rollup_batches(month=month, batch_size=batch_size)[0]
    captured = []

    def capture(execute, sql, params, many, context):
        captured.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        rollup_rows(month=month, first_id=first_id, last_id=last_id)
    sql, params = captured[0]  # the rows (the second query: their hours per ticket)
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def start_workers(count: int, env: dict[str, str]) -> list[subprocess.Popen]:
    workers = []
    for number in range(count):
        workers.append(
            subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "celery"),
                    "-A",
                    "supportbilling",
                    "worker",
                    "--concurrency=1",
                    "--pool=prefork",
                    "--loglevel=WARNING",
                    "--without-gossip",
                    "--without-mingle",
                    f"--hostname=bench{number}@%h",
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
    return workers


def wait_for_workers(app, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=1.0) or []
        if len(replies) >= count:
            return
    raise RuntimeError(f"{count} Celery workers did not answer within {timeout:.0f} s")


def stop_workers(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def measure_celery(month, workers_count: int, timeout: float) -> tuple[float, float]:
    """Wall time until the month is closed and CPU of the workers. (Not of their PostgreSQL
    backends: Celery closes the database connection after every task, and the CPU of a
    backend that has exited cannot be read.)"""
    from billing.tasks import close_ended_periods
    from packages.models import BillingPeriod, PeriodStatus
    from supportbilling.celery import app

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    app.control.purge()
    workers = start_workers(workers_count, env)
    try:
        wait_for_workers(app, workers_count)
        pids = _process_tree([worker.pid for worker in workers])
        workers_before = _cpu_snapshot(pids)
        started = time.perf_counter()
        close_ended_periods.delay()
        while not BillingPeriod.objects.filter(month=month, status=PeriodStatus.CLOSED).exists():
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"the period was not closed within {timeout:.0f} s")
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        workers_cpu = _cpu_delta(workers_before, _cpu_snapshot(_process_tree(pids)))
        return elapsed, workers_cpu
    finally:
        stop_workers(workers)


def _shown(value, spec: str = "") -> str:
    return "" if value is None else format(value, spec)


def machine() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    prepared = "on" if connection.features.uses_server_side_binding else "off"
    return (
        f"{platform.node()}: {os.cpu_count()} CPUs, {memory:.0f} GiB RAM, "
        f"PostgreSQL {version}, Python {platform.python_version()}, Django {django.__version__}, "
        f"DB_PREPARED {prepared}"
    )


def main() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportbilling.settings")
    os.environ.setdefault("SECRET_KEY", "benchmark-only-not-secret")
    django.setup()
    from billing.models import BillableItem, ItemKind
    from supportbilling.periods import (
        local_today,
        period_label,
        period_of,
        period_parse,
        period_previous,
    )

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscriptions", type=int, default=120_000)
    parser.add_argument("--entries", type=int, default=170_000)
    parser.add_argument("--month", help="YYYY-MM to close (default: last month)")
    parser.add_argument("--batch-size", type=int, default=settings.ROLLUP_BATCH_SIZE)
    parser.add_argument("--workers", default="1,2,4", help="Celery worker counts, or 0 to skip")
    parser.add_argument("--flush", action="store_true", help="wipe a database of another size")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE one batch")
    parser.add_argument("--timeout", type=float, default=300, help="per Celery run, seconds")
    options = parser.parse_args()

    if connection.vendor != "postgresql":
        sys.exit("The rollup benchmark runs on PostgreSQL: set DATABASE_URL.")
    month = (
        period_parse(options.month) if options.month else period_previous(period_of(local_today()))
    )
    print(machine())
    seed_or_reuse(
        subscriptions=options.subscriptions,
        entries=options.entries,
        month=month,
        flush=options.flush,
    )
    period_reset(month)
    if options.explain:
        print(explain_batch(month, options.batch_size))

    rows: list[tuple[str, float, int | None, int, float | None, float | None]] = []
    with_writes = close = 0.0
    baseline, scratch_rows, baseline_cpu = measure_baseline(month)
    rows.append(
        (
            "bare SQL: INSERT INTO scratch SELECT ... GROUP BY",
            baseline,
            1,
            scratch_rows,
            0.0,
            baseline_cpu,
        )
    )
    writes, written, writes_cpu = measure_writes(month)
    with_writes = baseline + writes
    rows.append(
        (
            "bare SQL: + the same writes (items, terms, audit)",
            with_writes,
            1 + len(WRITES_SQL),
            written,
            0.0,
            (baseline_cpu or 0) + (writes_cpu or 0),
        )
    )
    period_reset(month)
    elapsed, timer, items, cpu, server_cpu = measure_in_process(month, options.batch_size)
    close = elapsed
    rows.append(
        (
            f"period_close in process (batch {options.batch_size})",
            elapsed,
            timer.count,
            items,
            cpu,
            server_cpu,
        )
    )
    check = totals_agree(month)

    worker_counts = [int(n) for n in options.workers.split(",") if int(n) > 0]
    if worker_counts and not settings.REDIS_URL:
        print("REDIS_URL is not set: skipping the Celery runs.")
        worker_counts = []
    for count in worker_counts:
        period_reset(month)
        elapsed, workers_cpu = measure_celery(month, count, options.timeout)
        items = BillableItem.objects.filter(
            period=month, kind__in=[ItemKind.FEE, ItemKind.OVERTIME]
        ).count()
        rows.append(
            (f"Celery, {count} worker process(es)", elapsed, None, items, workers_cpu, None)
        )
        check_celery = totals_agree(month)
        if check_celery != "identical":
            check = f"{check}; Celery x{count}: {check_celery}"

    from billing.selectors.rollup import rollup_batches

    batches = len(rollup_batches(month=month, batch_size=options.batch_size))
    print(
        f"\nRollup of {period_label(month)}: {options.subscriptions} subscriptions, "
        f"{options.entries} time entries, batch size {options.batch_size}"
    )
    print(
        f"{'run':<50} {'wall s':>7} {'x SQL':>6} {'queries':>7} {'rows/items':>10} "
        f"{'app CPU s':>9} {'PG CPU s':>8}"
    )
    for name, seconds, statements, count, app_cpu, pg_cpu in rows:
        print(
            f"{name:<50} {seconds:>7.2f} {seconds / baseline:>6.1f} {_shown(statements):>7} "
            f"{count:>10} {_shown(app_cpu, '.2f'):>9} {_shown(pg_cpu, '.2f'):>8}"
        )
    print(
        f"({batches} batches. queries: statements sent through Django (the close sends no COPY)."
        "\n app CPU: this process or the Celery workers; PG CPU: the PostgreSQL "
        "backend of this process)"
    )
    print(f"Items against the bare SQL totals: {check}")
    print(timer.breakdown(close))
    print(
        f"Ratio: period_close in process is {close / baseline:.1f}x the bare SQL totals "
        f"({close:.2f} s against {baseline:.2f} s), {close / with_writes:.1f}x the bare SQL "
        f"with the same writes ({with_writes:.2f} s)"
    )


if __name__ == "__main__":
    main()
