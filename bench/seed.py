"""Benchmark data: clients, subscriptions, tickets and the time entries of one month, written
by ``bench/data.py`` (COPY on PostgreSQL). For a benchmark database only:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sbt_bench \
    python bench/seed.py --subscriptions 120000 --entries 170000 [--month 2026-10] [--flush]
"""

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class SeedRefused(Exception):
    """Nonsense sizes, a bad month, or a database that already holds subscriptions."""


def seed(
    *,
    subscriptions: int,
    entries: int,
    month: str | None = None,
    seed: int = 6,
    flush: bool = False,
) -> str:
    """Write the data set (Django set up); returns the line that reports it."""
    from django.core.exceptions import ValidationError

    from bench.data import bench_flush, bench_seed
    from packages.models import Subscription
    from supportbilling.periods import period_label, period_parse

    if subscriptions < 1 or entries < 0:
        raise SeedRefused("--subscriptions must be at least 1 and --entries at least 0.")
    try:
        first_day = period_parse(month) if month else None
    except ValidationError as exc:
        raise SeedRefused(" ".join(exc.messages)) from exc
    if flush:
        bench_flush()
    elif Subscription.objects.exists():
        raise SeedRefused(
            "The database already holds subscriptions; bench/seed.py writes into an empty "
            "database (add --flush to delete them first)."
        )
    started = time.perf_counter()
    result = bench_seed(subscriptions=subscriptions, entries=entries, month=first_day, seed=seed)
    return (
        f"Seeded {result.clients} clients, {result.subscriptions} subscriptions, "
        f"{result.tickets} tickets and {result.entries} time entries "
        f"({result.hours} h) in {period_label(result.month)} "
        f"in {time.perf_counter() - started:.1f} s."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscriptions", type=int, required=True)
    parser.add_argument("--entries", type=int, required=True)
    parser.add_argument("--month", help="YYYY-MM of the time entries (default: last month).")
    parser.add_argument("--seed", type=int, default=6, help="Random seed (default 6).")
    parser.add_argument(
        "--flush",
        action="store_true",
        help="Delete every client, subscription, ticket, entry, item and period first.",
    )
    options = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportbilling.settings")
    os.environ.setdefault("SECRET_KEY", "benchmark-only-not-secret")
    import django

    django.setup()
    try:
        print(seed(**vars(options)))
    except SeedRefused as exc:
        sys.exit(str(exc))


if __name__ == "__main__":
    main()
