"""Load test of the portal and the operator's workspace (docs/performance.md), for locust:

    locust -f bench/locustfile.py --headless -u 20 -r 5 -t 2m --only-summary \
        --host http://127.0.0.1:8000

``bench/load.py`` seeds the data, starts gunicorn, runs this and stops everything. Against
another server, set the logins (defaults: the benchmark's users, see bench/webload.py):
LOCUST_CLIENT_USER, LOCUST_OPERATOR_USER, LOCUST_PASSWORD, LOCUST_OPERATOR_SEARCH.

Client users (3 in 4): dashboard, ticket list, a ticket's page, the cost calculator's
estimate. Operators (1 in 4): an open ticket's workspace page and saving 0.25 h on it (answered
by the redirect back to the ticket; anything else counts as a failure). Ticket ids are read
from the pages, as a browser finds them.
"""

import os
import random
import re
from urllib.parse import quote_plus

from locust import HttpUser, between, task

PASSWORD = os.environ.get("LOCUST_PASSWORD", "bench-password-2026")
CLIENT_USER = os.environ.get("LOCUST_CLIENT_USER", "bench-client")
OPERATOR_USER = os.environ.get("LOCUST_OPERATOR_USER", "bench-operator")
# Operators work on the open tickets this admin search finds (empty: every open ticket).
OPERATOR_SEARCH = os.environ.get("LOCUST_OPERATOR_SEARCH", "Bench operator:")


class SignedIn(HttpUser):
    abstract = True
    wait_time = between(0.5, 2)

    def sign_in(self, login_path: str, username: str) -> None:
        self.client.get(login_path, name=login_path)
        response = self.client.post(
            login_path,
            data={
                "username": username,
                "password": PASSWORD,
                "csrfmiddlewaretoken": self.client.cookies.get("csrftoken", ""),
            },
            allow_redirects=False,
            name=f"{login_path} POST",
        )
        if response.status_code != 302 or "sessionid" not in self.client.cookies:
            raise RuntimeError(f"{username} could not sign in: {response.status_code}")

    def ids(self, path: str, pattern: str, name: str) -> list[int]:
        html = self.client.get(path, name=name).text
        found = sorted({int(pk) for pk in re.findall(pattern, html)})
        if not found:
            raise RuntimeError(f"nothing matching {pattern!r} on {path}")
        return found


class ClientUser(SignedIn):
    weight = 3

    def on_start(self) -> None:
        self.sign_in("/login/", CLIENT_USER)
        self.tickets = self.ids("/tickets/?status=", r'href="/tickets/(\d+)/"', "/tickets/")
        self.estimates = re.findall(r'data-estimate-url="([^"]+)"', self.client.get("/").text)

    @task(4)
    def dashboard(self) -> None:
        self.client.get("/", name="client: dashboard")

    @task(2)
    def ticket_list(self) -> None:
        self.client.get("/tickets/", name="client: tickets")

    @task(3)
    def ticket_page(self) -> None:
        self.client.get(f"/tickets/{random.choice(self.tickets)}/", name="client: ticket")

    @task(2)
    def estimate(self) -> None:
        if self.estimates:
            extra = random.choice(["0.25", "1", "2.5", "10"])
            self.client.get(
                f"{random.choice(self.estimates)}?extra={extra}", name="client: estimate"
            )


class OperatorUser(SignedIn):
    weight = 1

    def on_start(self) -> None:
        self.sign_in("/admin/login/", OPERATOR_USER)
        self.tickets = self.ids(
            f"/admin/tickets/ticket/?status__exact=open&q={quote_plus(OPERATOR_SEARCH)}",
            r'href="/admin/tickets/ticket/(\d+)/change/',
            "operator: open tickets",
        )

    @task(3)
    def ticket_page(self) -> None:
        self.client.get(
            f"/admin/tickets/ticket/{random.choice(self.tickets)}/change/",
            name="operator: ticket",
        )

    @task(1)
    def save_time(self) -> None:
        ticket = random.choice(self.tickets)
        with self.client.post(
            f"/admin/tickets/ticket/{ticket}/time/log/",
            data={
                "hours": "0.25",
                "note": "Load test",
                "csrfmiddlewaretoken": self.client.cookies.get("csrftoken", ""),
            },
            allow_redirects=False,
            name="operator: save time",
            catch_response=True,
        ) as response:
            if response.status_code != 302:
                response.failure(f"expected the redirect back, got {response.status_code}")
