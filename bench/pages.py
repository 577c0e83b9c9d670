"""Benchmark of the product's pages against a signed-in floor, in one run (docs/performance.md):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sbt_loadbench python bench/pages.py

It seeds (once, or reuses; bench/webload.py) the portal's client (3 subscriptions, 200 tickets,
24 closed months), the operator's client (a ticket with 50 messages and 100 entries, a ticket to
save time on) and other clients' month of 170,000 entries. It starts
``gunicorn supportbilling.wsgi -w 4`` on 127.0.0.1, signs the client user in through the
portal's form and an operator through the admin's, and measures with ``--concurrency`` clients
for ``--seconds`` each:

1. ``/healthz/``: a trivial Django view, no session (one ``SELECT 1``);
2. the floor: ``/me.json``, the smallest signed-in page of the portal (session, user, client);
3. the portal's dashboard, signed in as the client user;
4. the admin's ticket page of the ticket with 50 messages and 100 entries, as the operator;
5. the portal's history (24 closed months of its 3 subscriptions), signed in as the client;
6. one save: logging 0.25 h on a ticket through the admin's "Save time" (302 expected).

With ``--dashboard-scaling`` it also seeds two variants of the portal's client, one with 10
more Gold subscriptions (13) and one with 6 closed months instead of 24, measures their
dashboards like the first, and the CPU time of one dashboard in this process (Django's test
client, median of 40 after a warm-up) for all three: the cost of a subscription and of the
closed months.

It prints a table (requests per second, p50, p99, errors, bytes of one answer, the throughput
over the floor's), or with ``--json`` one JSON object on stdout (the progress goes to stderr).
For a benchmark database only: it writes time entries, and deletes those its saves wrote
(before measuring and after), so every run shows the ticket page on the same data.
"""

import argparse
import json
import os
import sys
from typing import Any

import webload


def _bytes(base: str, path: str, cookies: str, shows: str) -> int:
    """The size of one answer, after checking that the page shows what it should."""
    status, _, body = webload.get(base, path, cookies)
    if status != 200 or shows.encode() not in body:
        raise SystemExit(f"GET {path} answered {status} without {shows!r}")
    return len(body)


def _row(result: webload.Result, size: int, floor: webload.Result) -> dict[str, Any]:
    return {
        "name": result.name,
        "rps": round(result.rps, 1),
        "p50_ms": round(result.percentile(0.50), 1),
        "p99_ms": round(result.percentile(0.99), 1),
        "requests": result.requests,
        "errors": result.errors,
        "bytes": size,
        "over_signed_in": round(result.rps / floor.rps, 3) if floor.rps else None,
    }


SCALING_EXTRA_SUBSCRIPTIONS = 10
SCALING_CLOSED_MONTHS = 6
VARIANTS = {
    # key: (client name, portal user, extra subscriptions, closed months)
    "dashboard_more_subscriptions": (
        "Bench portal client, 13 subscriptions",
        "bench-client-13",
        SCALING_EXTRA_SUBSCRIPTIONS,
        webload.CLOSED_MONTHS,
    ),
    "dashboard_fewer_closed_months": (
        "Bench portal client, 6 closed months",
        "bench-client-6m",
        0,
        SCALING_CLOSED_MONTHS,
    ),
}


def _cpu_ms(path: str, username: str, views: int = 40) -> float:
    """Median CPU time of one GET of ``path`` in this process, signed in as ``username``."""
    import time

    from django.contrib.auth import get_user_model
    from django.test import Client

    browser = Client(HTTP_HOST="127.0.0.1")
    browser.force_login(get_user_model().objects.get(username=username))
    for _ in range(5):
        assert browser.get(path).status_code == 200
    times = []
    for _ in range(views):
        started = time.process_time()
        browser.get(path)
        times.append(time.process_time() - started)
    return round(sorted(times)[views // 2] * 1000, 2)


def _saves_removed(ticket_id: int) -> None:
    """Delete the time the saves logged on ``ticket_id`` and vacuum the entries, whose index
    would otherwise still lead the time panel's sum through the dead rows."""
    from django.db import connection

    from tickets.models import TimeEntry

    TimeEntry.objects.filter(ticket_id=ticket_id).delete()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE tickets_timeentry")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument(
        "--other-entries",
        type=int,
        default=170_000,
        help="other clients' entries in the current month, seeded once (0: none)",
    )
    parser.add_argument(
        "--dashboard-scaling",
        action="store_true",
        help="also the dashboards of a client with 10 more subscriptions and of one with 6 "
        "closed months, under load and in process",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args()
    out = sys.stdout
    if args.json:  # everything else (ours, gunicorn's) goes to stderr
        out = os.fdopen(os.dup(1), "w")
        os.dup2(2, 1)

    webload.django_setup()
    from django.urls import reverse

    from tickets.models import TimeEntry

    webload.seed_client()
    if args.dashboard_scaling:
        for name, username, extra, months in VARIANTS.values():
            webload.seed_client(name, username, extra_subscriptions=extra, closed_months=months)
    busy, save, _ = webload.seed_operator_tickets()
    # The saves log time on the busy ticket's subscription, and its time panel sums the
    # month: what an earlier run saved would make this run's ticket page slower.
    _saves_removed(save)
    webload.seed_other_clients(entries=args.other_entries)
    machine = webload.machine()
    print(machine)
    floor_path, home = reverse("clientarea:me"), reverse("clientarea:home")
    history = reverse("clientarea:history")
    ticket_page = reverse("admin:tickets_ticket_change", args=[busy])
    log = reverse("admin:tickets_ticket_log", args=[save])
    common = {"concurrency": args.concurrency, "seconds": args.seconds}
    with webload.Gunicorn(workers=args.workers) as server:
        base = server.base
        client, _ = webload.login(base, reverse("clientarea:login"), webload.CLIENT_USER)
        operator, csrf = webload.login(base, reverse("admin:login"), webload.OPERATOR_USER)
        sizes = {
            "healthz": _bytes(base, "/healthz/", "", ""),
            "floor": _bytes(base, floor_path, client, webload.CLIENT_NAME),
            "dashboard": _bytes(base, home, client, "Bench Gold"),
            "ticket_page": _bytes(base, ticket_page, operator, webload.BUSY_SUBJECT),
            "history": _bytes(base, history, client, "Bench Gold"),
            "save": 0,  # the redirect back to the ticket
        }
        # Warm up every worker (imports, connections, template caches) before measuring.
        for path, cookies in ((home, client), (ticket_page, operator), (history, client)):
            webload.measure("warm-up", base, path, cookies=cookies, seconds=2)
        results = {
            "healthz": webload.measure("trivial view GET /healthz/", base, "/healthz/", **common),
            "floor": webload.measure(
                f"signed-in floor GET {floor_path}", base, floor_path, cookies=client, **common
            ),
            "dashboard": webload.measure(
                f"dashboard GET {home}", base, home, cookies=client, **common
            ),
            "ticket_page": webload.measure(
                "admin ticket page (50 msg, 100 entries)",
                base,
                ticket_page,
                cookies=operator,
                **common,
            ),
            "history": webload.measure(
                f"portal history GET {history}",
                base,
                history,
                cookies=client,
                **common,
            ),
        }
        if args.dashboard_scaling:
            for key, (name, username, _, _) in VARIANTS.items():
                cookies, _ = webload.login(base, reverse("clientarea:login"), username)
                sizes[key] = _bytes(base, home, cookies, "Bench Gold")
                webload.measure("warm-up", base, home, cookies=cookies, seconds=2)
                results[key] = webload.measure(
                    f"dashboard of {name.split(', ')[1]}", base, home, cookies=cookies, **common
                )
        before = TimeEntry.objects.filter(ticket_id=save).count()
        results["save"] = webload.measure(
            "save time POST (302)",
            base,
            log,
            cookies=operator,
            method="POST",
            body={"hours": "0.25", "note": "Bench save", "csrfmiddlewaretoken": csrf},
            expect=302,
            **common,
        )
        added = TimeEntry.objects.filter(ticket_id=save).count() - before
    _saves_removed(save)
    floor = results["floor"]
    rows = {key: _row(result, sizes[key], floor) for key, result in results.items()}
    saves_ok = results["save"].requests - results["save"].errors
    report = {
        "machine": machine,
        "load_average": os.getloadavg(),
        "seconds": args.seconds,
        "concurrency": args.concurrency,
        "workers": args.workers,
        "pages": rows,
        "dashboard_over_signed_in": rows["dashboard"]["over_signed_in"],
        "ticket_page_over_signed_in": rows["ticket_page"]["over_signed_in"],
        "save_over_signed_in": rows["save"]["over_signed_in"],
        "history_over_signed_in": rows["history"]["over_signed_in"],
        "healthz_over_signed_in": rows["healthz"]["over_signed_in"],
        "dashboard_p99_ms": rows["dashboard"]["p99_ms"],
        "saves_ok": saves_ok,
        "entries_added": added,
    }
    if args.dashboard_scaling:
        cpu = {"dashboard": _cpu_ms(home, webload.CLIENT_USER)}
        for key, (_, username, _, _) in VARIANTS.items():
            cpu[key] = _cpu_ms(home, username)
        report["dashboard_cpu_ms"] = cpu
        report["dashboard_cpu_ms_per_extra_subscription"] = round(
            (cpu["dashboard_more_subscriptions"] - cpu["dashboard"]) / SCALING_EXTRA_SUBSCRIPTIONS,
            3,
        )
        report["dashboard_cpu_ms_24_over_6_closed_months"] = round(
            cpu["dashboard"] - cpu["dashboard_fewer_closed_months"], 2
        )
    if args.json:
        print(json.dumps(report, indent=2), file=out)
        out.flush()
    else:
        print(
            f"\n{'page':<42} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} "
            f"{'bytes':>8} {'x floor':>8}"
        )
        for row in rows.values():
            print(
                f"{row['name']:<42} {row['rps']:8.1f} {row['p50_ms']:8.1f} {row['p99_ms']:8.1f} "
                f"{row['errors']:6d} {row['bytes']:8d} {row['over_signed_in']:8.2f}"
            )
        print(f"entries added: {added} for {saves_ok} successful saves")
        if args.dashboard_scaling:
            print(f"dashboard CPU in process, ms: {report['dashboard_cpu_ms']}")
            print(
                "per extra subscription: "
                f"{report['dashboard_cpu_ms_per_extra_subscription']} ms; 24 closed months "
                f"over 6: {report['dashboard_cpu_ms_24_over_6_closed_months']} ms"
            )
    if any(result.errors for result in results.values()) or added != saves_ok:
        raise SystemExit("errors during the run (see above)")


if __name__ == "__main__":
    main()
