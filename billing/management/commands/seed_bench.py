"""manage.py seed_bench --subscriptions N --entries M [--month YYYY-MM]: benchmark data."""

import time

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = (
        "Write a large data set for the benchmarks: clients, subscriptions, tickets and the "
        "time entries of one month (COPY on PostgreSQL). For a benchmark database only."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--subscriptions", type=int, required=True)
        parser.add_argument("--entries", type=int, required=True)
        parser.add_argument("--month", help="YYYY-MM of the time entries (default: last month).")
        parser.add_argument("--seed", type=int, default=6, help="Random seed (default 6).")
        parser.add_argument(
            "--flush",
            action="store_true",
            help="Delete every client, subscription, ticket, entry, item and period first.",
        )

    def handle(
        self,
        *args: object,
        subscriptions: int,
        entries: int,
        month: str | None,
        seed: int,
        flush: bool,
        **options: object,
    ) -> None:
        from billing.bench_data import bench_flush, bench_seed
        from packages.models import Subscription
        from supportbilling.periods import period_label, period_parse

        if subscriptions < 1 or entries < 0:
            raise CommandError("--subscriptions must be at least 1 and --entries at least 0.")
        try:
            first_day = period_parse(month) if month else None
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        if flush:
            bench_flush()
        elif Subscription.objects.exists():
            raise CommandError(
                "The database already holds subscriptions; seed_bench writes into an empty "
                "database (add --flush to delete them first)."
            )
        started = time.perf_counter()
        result = bench_seed(
            subscriptions=subscriptions, entries=entries, month=first_day, seed=seed
        )
        self.stdout.write(
            f"Seeded {result.clients} clients, {result.subscriptions} subscriptions, "
            f"{result.tickets} tickets and {result.entries} time entries "
            f"({result.hours} h) in {period_label(result.month)} "
            f"in {time.perf_counter() - started:.1f} s."
        )
