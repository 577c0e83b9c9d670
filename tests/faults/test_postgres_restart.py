"""PostgreSQL stopped and started again under a running web app (gunicorn, a separate process
keeping its database connection between requests): requests during the outage get a plain
503 at once, and the next ones succeed without restarting the app."""

import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

from django.db import connection, connections
from django.urls import reverse

from conftest import need_service
from tests.factories import ClientUserFactory, OperatorFactory, SubscriptionFactory, TicketFactory
from tests.faults.conftest import request, session_cookie, wait_for
from tickets.models import TimeEntry

LOCAL_HOSTS = {"", "localhost", "127.0.0.1", "::1"}


def local_cluster() -> list[str]:
    """The pg_ctlcluster arguments of the local PostgreSQL the tests run on."""
    versions = (
        sorted(Path("/etc/postgresql").glob("*/main")) if Path("/etc/postgresql").is_dir() else []
    )
    if connection.settings_dict["HOST"] not in LOCAL_HOSTS or not versions:
        need_service("a local PostgreSQL cluster the test may restart (pg_ctlcluster)")
    if shutil.which("pg_ctlcluster") is None:
        need_service("pg_ctlcluster")
    return ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1].parent.name, "main"]


def pg_ctl(cluster: list[str], action: str) -> None:
    subprocess.run([*cluster, action], check=True, timeout=60, capture_output=True)


def postgres_is_up() -> bool:
    port = str(connection.settings_dict["PORT"] or 5432)
    ready = subprocess.run(
        ["pg_isready", "-q", "-h", "127.0.0.1", "-p", port], timeout=10, check=False
    )
    return ready.returncode == 0


def test_requests_fail_cleanly_while_postgres_restarts_and_succeed_after(postgres, gunicorn):
    cluster = local_cluster()
    # given a client user signed in to the portal served by gunicorn
    user = ClientUserFactory()
    subscription = SubscriptionFactory(client=user.client)
    ticket = TicketFactory(subscription=subscription)
    staff = session_cookie(OperatorFactory())
    cookie = session_cookie(user.user)
    base = gunicorn()
    assert request(f"{base}/", cookie)[0] == 200
    # (this test's own connection would die with the server too)
    connections.close_all()
    try:
        # when PostgreSQL stops under the running app
        pg_ctl(cluster, "stop")
        # then every request gets a plain 503 at once: no hang, no traceback
        for path in ("/", "/healthz/", "/admin/"):
            status, body = request(f"{base}{path}", cookie)
            assert status == 503, (path, status, body)
            assert "Traceback" not in body and "psycopg" not in body
            assert "Service temporarily unavailable" in body
        # when it is started again
        pg_ctl(cluster, "start")
        # then the same app process answers again, with the same session
        wait_for(lambda: request(f"{base}/healthz/")[0] == 200, "the app to reach PostgreSQL")
        status, body = request(f"{base}/", cookie)
        assert status == 200, body
        assert subscription.package.name in body
        # and writes too: an operator saves time
        log_time = reverse("admin:tickets_ticket_log", args=[ticket.pk])
        status, _ = request(f"{base}{log_time}", staff, {"hours": "0.75", "note": "After"})
        assert status == 302
        assert TimeEntry.objects.get(ticket=ticket).hours == Decimal("0.75")
    finally:
        if not postgres_is_up():
            pg_ctl(cluster, "start")
        wait_for(postgres_is_up, "PostgreSQL to be up again", seconds=60)
        connections.close_all()
