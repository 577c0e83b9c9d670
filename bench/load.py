"""The load test (docs/performance.md), one command:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sbt_loadbench python bench/load.py

It seeds (once) the portal benchmark's client (3 subscriptions, 200 tickets, 24 closed
months), the operator benchmark's client and tickets and the two logins, starts
``gunicorn supportbilling.wsgi -w 4`` on 127.0.0.1, runs
``locust -f bench/locustfile.py --headless -u 20 -r 5 -t 2m --only-summary`` against it,
stops everything, and fails unless locust counted zero failures.
"""

import argparse
import subprocess
import sys
from pathlib import Path

import webload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--spawn-rate", type=int, default=5)
    parser.add_argument("--time", default="2m", help="locust's --run-time")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument(
        "--other-entries",
        type=int,
        default=170_000,
        help="other clients' entries in the current month, seeded once (0: none)",
    )
    args = parser.parse_args()

    webload.django_setup()
    webload.seed_client()
    webload.seed_other_clients(entries=args.other_entries)
    webload.seed_operator_tickets()
    print(webload.machine())
    with webload.Gunicorn(workers=args.workers) as server:
        command = [
            str(Path(sys.executable).with_name("locust")),
            "-f",
            str(Path(__file__).with_name("locustfile.py")),
            "--headless",
            f"-u{args.users}",
            f"-r{args.spawn_rate}",
            f"-t{args.time}",
            "--only-summary",
            "--stop-timeout=10",
            f"--host={server.base}",
        ]
        print("$ " + " ".join(command))
        # locust exits 1 when any request failed.
        returncode = subprocess.run(command, check=False).returncode
    if returncode:
        raise SystemExit(f"locust reported failures (exit status {returncode})")
    print("zero failures")


if __name__ == "__main__":
    main()
