"""`make demo`'s embedded default: SQLite, eager Celery, demo data. Every page a demo login
opens first answers 200 there too, so nothing PostgreSQL-only slips into a page."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PAGES = """
import json, os, django
django.setup()
from django.contrib.auth.models import User
from django.test import Client
from tickets.models import Ticket
from billing.models import BillableItem

def status(username, url):
    browser = Client()
    browser.force_login(User.objects.get(username=username))
    return browser.get(url, HTTP_HOST="127.0.0.1").status_code

ticket = Ticket.objects.order_by("pk").first()
urls = {
    "admin": ["/admin/", f"/admin/tickets/ticket/{ticket.pk}/change/", "/admin/tickets/ticket/",
              "/admin/packages/billingperiod/", "/admin/billing/billableitem/",
              "/admin/webhooks/webhookdelivery/", "/admin/whmcs/whmcspush/"],
    "alice": [f"/admin/tickets/ticket/{ticket.pk}/change/"],
    "fiona": ["/admin/packages/billingperiod/", "/admin/billing/billableitem/"],
    "jane": ["/", "/history/", "/tickets/", "/me.json"],
}
print(json.dumps({f"{user} {url}": status(user, url) for user, pages in urls.items()
                  for url in pages}))
"""


def test_the_demo_pages_work_on_sqlite(tmp_path):
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "CI")
    }
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        DEBUG="1",
        DJANGO_SETTINGS_MODULE="supportbilling.settings",
    )
    for command in (["migrate", "--no-input", "-v0"], ["seed_demo"]):
        subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=600,
        )
    run = subprocess.run(
        [sys.executable, "-c", PAGES],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    statuses = json.loads(run.stdout.strip().splitlines()[-1])
    assert statuses and {page: 200 for page in statuses} == statuses
