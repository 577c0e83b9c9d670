"""Benchmark of the operator's workspace under gunicorn (docs/performance.md). One command:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sbt_loadbench python bench/operator.py

It seeds (once) a client with a recurring Gold subscription and tickets on it: one with 50
messages and 100 time entries, others to save time on, and other clients' month of 170,000
entries (bench/webload.py). It starts ``gunicorn supportbilling.wsgi -w 4`` on 127.0.0.1,
signs an operator in through the admin's
login form, and measures with 16 concurrent clients for ``--seconds`` each, in the same run:
1. the baselines: the trivial Django view ``/healthz/``, and a tiny signed-in admin answer
   (the hours box's -/+ endpoint, ``admin:tickets_ticket_hours_step``: session, user and
   permission checks, a few bytes of JSON), the floor of any page an operator sees;
2. the admin ticket change page (the workspace) of the busy ticket;
3. saving one entry: POST of the workspace's "Save time" form (``admin:tickets_ticket_log``,
   0.25 h), each answered by the redirect back to the ticket (302); anything else is an error.
It prints requests per second, p50/p99 latency, errors and the ratios to the baselines, and
checks that the number of entries grew by exactly the number of successful saves. Last, in
this process (Django's test client, no gunicorn), the CPU time of one request of the tiny
admin answer and of the ticket page (median of ``--cpu-runs``): on a shared machine the
ratio of CPU times moves far less than the ratio of requests per second.
"""

import argparse

import webload


def cpu_per_request(url: str, runs: int) -> float:
    """Median CPU milliseconds of this process for one GET of ``url`` by the operator."""
    import time

    from django.contrib.auth.models import User
    from django.test import Client
    from django.test.utils import override_settings

    with override_settings(ALLOWED_HOSTS=["testserver"]):
        browser = Client()
        browser.force_login(User.objects.get(username=webload.OPERATOR_USER))
        browser.get(url)
        times = []
        for _ in range(runs):
            start = time.process_time()
            if browser.get(url).status_code != 200:
                raise SystemExit(f"{url} did not answer 200 in process")
            times.append(time.process_time() - start)
    return sorted(times)[len(times) // 2] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="per measurement")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--cpu-runs", type=int, default=30, help="in-process requests per page")
    parser.add_argument(
        "--other-entries",
        type=int,
        default=170_000,
        help="other clients' entries in the current month, seeded once (0: none)",
    )
    args = parser.parse_args()

    webload.django_setup()
    from django.urls import reverse

    from tickets.models import TimeEntry

    busy, save, _ = webload.seed_operator_tickets()
    webload.seed_other_clients(entries=args.other_entries)
    print(webload.machine())
    page = reverse("admin:tickets_ticket_change", args=[busy])
    tiny = reverse("admin:tickets_ticket_hours_step") + "?hours=1&steps=1"
    log = reverse("admin:tickets_ticket_log", args=[save])
    with webload.Gunicorn(workers=args.workers) as server:
        cookies, csrf = webload.login(server.base, reverse("admin:login"), webload.OPERATOR_USER)
        status, _, body = webload.get(server.base, page, cookies)
        if status != 200 or webload.BUSY_SUBJECT.encode() not in body:
            raise SystemExit(f"the ticket page did not render for the operator: {status}")
        webload.measure("warm-up", server.base, page, cookies=cookies, seconds=2)
        common = {"concurrency": args.concurrency, "seconds": args.seconds}
        results = [
            webload.measure("trivial view GET /healthz/", server.base, "/healthz/", **common),
            webload.measure(
                "tiny signed-in admin GET", server.base, tiny, cookies=cookies, **common
            ),
            webload.measure(
                "ticket page GET (50 msg, 100 entries)",
                server.base,
                page,
                cookies=cookies,
                **common,
            ),
        ]
        status, _, body = webload.get(server.base, page, cookies)
        print(f"ticket page: {len(body):,} bytes")
        for result in results:
            print(result.line())
        before = TimeEntry.objects.filter(ticket_id=save).count()
        form = {"hours": "0.25", "note": "Bench save", "csrfmiddlewaretoken": csrf}
        saves = webload.measure(
            "save time POST (302 expected)",
            server.base,
            log,
            cookies=cookies,
            method="POST",
            body=form,
            expect=302,
            **common,
        )
        results.append(saves)
        print(saves.line())
        added = TimeEntry.objects.filter(ticket_id=save).count() - before
    for baseline in results[:2]:
        for result in results[2:]:
            print(
                f"ratio {result.name.split(' (')[0]} / {baseline.name}: throughput "
                f"{result.rps / baseline.rps:.2f}x, p50 latency "
                f"{result.percentile(0.5) / baseline.percentile(0.5):.1f}x, p99 latency "
                f"{result.percentile(0.99) / baseline.percentile(0.99):.1f}x"
            )
    print(f"entries added: {added} for {saves.requests - saves.errors} successful saves")
    cpu = {
        name: cpu_per_request(url, args.cpu_runs) for name, url in (("tiny", tiny), ("page", page))
    }
    print(
        f"in process, CPU per request: tiny signed-in admin GET {cpu['tiny']:.1f} ms, ticket "
        f"page {cpu['page']:.1f} ms, ratio {cpu['tiny'] / cpu['page']:.2f}x"
    )
    if any(result.errors for result in results) or added != saves.requests - saves.errors:
        raise SystemExit("errors during the run (see above)")


if __name__ == "__main__":
    main()
