"""PostgreSQL stopped and started again under a running web app (gunicorn, a separate process
keeping its database connection between requests): requests during the outage get a plain
503 at once, and the next ones succeed without restarting the app."""

import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from django.db import connection, connections
from django.test import Client as BrowserClient

from conftest import need_service
from tests.factories import ClientUserFactory, SubscriptionFactory
from tests.faults.conftest import wait_for

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


def get(url: str, cookie: str = "") -> tuple[int, str]:
    """Status and body; a request that hangs fails the test (timeout)."""
    request = urllib.request.Request(url, headers={"Cookie": cookie})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_requests_fail_cleanly_while_postgres_restarts_and_succeed_after(postgres, gunicorn):
    cluster = local_cluster()
    # given a client user signed in to the portal served by gunicorn
    user = ClientUserFactory()
    subscription = SubscriptionFactory(client=user.client)
    browser = BrowserClient()
    browser.force_login(user.user)
    cookie = f"sessionid={browser.cookies['sessionid'].value}"
    base = gunicorn()
    assert get(f"{base}/", cookie)[0] == 200
    # (this test's own connection would die with the server too)
    connections.close_all()
    try:
        # when PostgreSQL stops under the running app
        pg_ctl(cluster, "stop")
        # then every request gets a plain 503 at once: no hang, no traceback
        for path in ("/", "/healthz/", "/admin/"):
            status, body = get(f"{base}{path}", cookie)
            assert status == 503, (path, status, body)
            assert "Traceback" not in body and "psycopg" not in body
            assert "Service temporarily unavailable" in body
        # when it is started again
        pg_ctl(cluster, "start")
        # then the same app process answers again, with the same session
        wait_for(lambda: get(f"{base}/healthz/")[0] == 200, "the app to reach PostgreSQL")
        status, body = get(f"{base}/", cookie)
        assert status == 200, body
        assert subscription.package.name in body
    finally:
        if not postgres_is_up():
            pg_ctl(cluster, "start")
        wait_for(postgres_is_up, "PostgreSQL to be up again", seconds=60)
        connections.close_all()
