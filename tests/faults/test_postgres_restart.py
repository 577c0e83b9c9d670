"""PostgreSQL stopped and started again under a running web app (gunicorn, a separate process
keeping its database connection between requests): requests during the outage get a plain
503 at once, and the next ones succeed without restarting the app. The server stopped is a
private one the test starts (``private_postgres``), never the machine's."""

from decimal import Decimal

from django.db import connections
from django.urls import reverse

from tests.factories import ClientUserFactory, OperatorFactory, SubscriptionFactory, TicketFactory
from tests.faults.conftest import request, session_cookie, wait_for
from tickets.models import TimeEntry


def test_requests_fail_cleanly_while_postgres_restarts_and_succeed_after(
    private_postgres, gunicorn
):
    # given a client user signed in to the portal served by gunicorn, on a private server
    user = ClientUserFactory()
    subscription = SubscriptionFactory(client=user.client)
    ticket = TicketFactory(subscription=subscription)
    staff = session_cookie(OperatorFactory())
    cookie = session_cookie(user.user)
    base = gunicorn()
    assert request(f"{base}/", cookie)[0] == 200
    # (this test's own connection would die with the server too)
    connections.close_all()
    # when PostgreSQL stops under the running app
    private_postgres.stop()
    assert not private_postgres.is_up()
    # then every request gets a plain 503 at once: no hang, no traceback
    for path in ("/", "/healthz/", "/admin/"):
        status, body = request(f"{base}{path}", cookie)
        assert status == 503, (path, status, body)
        assert "Traceback" not in body and "psycopg" not in body
        assert "Service temporarily unavailable" in body
    # when it is started again (same data, same port)
    private_postgres.start()
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
