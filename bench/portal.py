"""Benchmark of the client portal's dashboard under gunicorn (docs/performance.md). One command:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sbt_loadbench python bench/portal.py

It seeds (once) a client with 3 subscriptions, 200 tickets and 24 closed months, and other
clients with 170,000 entries in the current month (the design's monthly volume), starts
``gunicorn supportbilling.wsgi -w 4`` on 127.0.0.1, signs the client's user in through the
login form, and measures with 16 concurrent clients for ``--seconds`` each, in the same run:
1. the baseline: the trivial Django view ``/healthz/`` (one ``SELECT 1``);
2. the dashboard (``clientarea:home``), signed in.
It prints requests per second, p50/p99 latency, errors, and the dashboard/baseline ratios.
The load generator runs on the same machine (4 processes x 4 threads): its CPU is shared with
gunicorn and PostgreSQL, so the figures are a floor. For a benchmark database only.
"""

import argparse

import webload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="per measurement")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument(
        "--other-entries",
        type=int,
        default=170_000,
        help="other clients' entries in the current month, seeded once (0: none)",
    )
    args = parser.parse_args()

    webload.django_setup()
    from django.urls import reverse

    webload.seed_client()
    webload.seed_other_clients(entries=args.other_entries)
    print(webload.machine())
    home, login_path = reverse("clientarea:home"), reverse("clientarea:login")
    with webload.Gunicorn(workers=args.workers) as server:
        cookies, _ = webload.login(server.base, login_path, webload.CLIENT_USER)
        status, _, body = webload.get(server.base, home, cookies)
        if status != 200 or b"Bench Gold" not in body:
            raise SystemExit(f"the dashboard did not render for the bench client: {status}")
        # Warm up every worker (imports, connections) before measuring.
        webload.measure("warm-up", server.base, home, cookies=cookies, seconds=2)
        common = {"concurrency": args.concurrency, "seconds": args.seconds}
        baseline = webload.measure("trivial view GET /healthz/", server.base, "/healthz/", **common)
        print(baseline.line())
        dashboard = webload.measure(
            f"dashboard GET {home}", server.base, home, cookies=cookies, **common
        )
        print(dashboard.line())
    print(
        f"ratio dashboard/trivial: throughput {dashboard.rps / baseline.rps:.2f}x, "
        f"p50 latency {dashboard.percentile(0.5) / baseline.percentile(0.5):.1f}x, "
        f"p99 latency {dashboard.percentile(0.99) / baseline.percentile(0.99):.1f}x"
    )
    if baseline.errors or dashboard.errors:
        raise SystemExit("errors during the run (see above)")


if __name__ == "__main__":
    main()
