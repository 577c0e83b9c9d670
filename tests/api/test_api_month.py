"""A month played end to end through the API: catalogue, clients in two currencies,
subscriptions, tickets and time; the close; the items and the CSV export, figure by figure."""

import csv
import datetime as dt
import io

from tests.api.conftest import api_as
from tests.factories import AdminFactory, FinanceFactory, OperatorFactory


def _ok(response, status=200):
    assert response.status_code == status, response.content
    return response.json()


def test_a_month_through_the_api(db, time_machine):
    time_machine.move_to(dt.datetime(2026, 10, 1, 8, 0, tzinfo=dt.UTC), tick=False)
    admin = api_as(AdminFactory())
    operator = api_as(OperatorFactory(username="alice"))
    finance = api_as(FinanceFactory())

    # given a recurring package and a one-time bucket, priced in EUR and USD
    gold = _ok(
        admin.post(
            "/api/v1/packages/",
            {
                "name": "Gold",
                "billing_mode": "recurring",
                "included_hours": "10.00",
                "invoice_action": "next_invoice",
                "prices": [
                    {"currency": "EUR", "fee": "500.00", "hourly_rate": "60.00"},
                    {"currency": "USD", "fee": "550.00", "hourly_rate": "70.00"},
                ],
            },
            format="json",
        ),
        201,
    )
    bucket = _ok(
        admin.post(
            "/api/v1/packages/",
            {
                "name": "Bucket 5h",
                "billing_mode": "one_time",
                "included_hours": "5.00",
                "invoice_action": "due_date",
                "prices": [
                    {"currency": "EUR", "fee": "300.00", "hourly_rate": "0.00"},
                    {"currency": "USD", "fee": "330.00", "hourly_rate": "0.00"},
                ],
            },
            format="json",
        ),
        201,
    )
    # and clients in both currencies
    acme = _ok(
        admin.post(
            "/api/v1/clients/",
            {"name": "ACME Ltd", "email": "billing@acme.test", "currency": "EUR"},
            format="json",
        ),
        201,
    )
    globex = _ok(
        admin.post(
            "/api/v1/clients/",
            {"name": "Globex", "email": "ap@globex.test", "currency": "USD"},
            format="json",
        ),
        201,
    )

    # when operators subscribe them and log time during October
    def subscribe(client, package):
        return _ok(
            operator.post(
                "/api/v1/subscriptions/",
                {"client": client["id"], "package": package["id"]},
                format="json",
            ),
            201,
        )

    acme_gold = subscribe(acme, gold)
    globex_gold = subscribe(globex, gold)
    time_machine.move_to(dt.datetime(2026, 10, 5, 8, 0, tzinfo=dt.UTC), tick=False)
    globex_bucket = subscribe(globex, bucket)
    assert globex_bucket["start_date"] == "2026-10-05"

    def ticket(client, subscription, subject):
        return _ok(
            operator.post(
                "/api/v1/tickets/",
                {
                    "client": client["id"],
                    "subscription": subscription["id"],
                    "subject": subject,
                    "body": "Please help",
                },
                format="json",
            ),
            201,
        )

    def log(ticket_id, hours, day):
        return _ok(
            operator.post(
                f"/api/v1/tickets/{ticket_id}/time-entries/",
                {"hours": hours, "work_date": f"2026-10-{day:02d}", "note": "work"},
                format="json",
            ),
            201,
        )

    time_machine.move_to(dt.datetime(2026, 10, 30, 17, 0, tzinfo=dt.UTC), tick=False)
    mail = ticket(acme, acme_gold, "Mail server down")
    log(mail["id"], "8.00", 6)
    log(mail["id"], "4.25", 20)  # 12.25 h: 2.25 h over the 10 included
    printer = ticket(globex, globex_gold, "Printer")
    log(printer["id"], "3.50", 7)  # within the 10 included
    migration = ticket(globex, globex_bucket, "Migration")
    log(migration["id"], "2.00", 8)  # from the bucket: no monthly item
    assert _ok(operator.get(f"/api/v1/tickets/{mail['id']}/"))["hours_logged"] == "12.25"

    # and finance closes October in November
    time_machine.move_to(dt.datetime(2026, 11, 1, 0, 5, tzinfo=dt.UTC), tick=False)
    closed = _ok(finance.post("/api/v1/rollups/", {"period": "2026-10"}, format="json"), 201)

    # then ACME's fee and overtime and Globex's fee are written
    assert closed == {"period": "2026-10", "closed": True, "items_created": 3}
    items = _ok(finance.get("/api/v1/billable-items/?period=2026-10&page_size=500"))
    figures = {
        (i["client"], i["subscription"], i["kind"]): (
            i["quantity"],
            i["unit_price"],
            i["amount"],
            i["currency"],
            i["invoice_action"],
            i["status"],
        )
        for i in items["results"]
    }
    assert figures == {
        (acme["id"], acme_gold["id"], "fee"): (
            "1.00", "500.00", "500.00", "EUR", "next_invoice", "pending"
        ),
        (acme["id"], acme_gold["id"], "overtime"): (
            "2.25", "60.00", "135.00", "EUR", "next_invoice", "pending"
        ),
        (globex["id"], globex_gold["id"], "fee"): (
            "1.00", "550.00", "550.00", "USD", "next_invoice", "pending"
        ),
        (globex["id"], globex_bucket["id"], "one_time"): (
            "1.00", "330.00", "330.00", "USD", "due_date", "pending"
        ),
    }  # fmt: skip
    overtime = next(i for i in items["results"] if i["kind"] == "overtime")
    assert overtime["description"] == "Support overtime 2026-10: 2.25 h x 60.00 EUR"

    # and the CSV export holds the same rows and figures
    response = finance.get("/api/v1/billable-items/export/?period=2026-10&format=csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    # the JSON item's columns (less where it stands in the review), then the client's name
    review_fields = ("in_review", "held")
    columns = [key for key in items["results"][0] if key not in review_fields]
    assert list(rows[0]) == [*columns, "client_name"]
    by_id = {i["id"]: i for i in items["results"]}
    names = {acme["id"]: acme["name"], globex["id"]: globex["name"]}
    assert len(rows) == 4
    for row in rows:
        item = by_id[int(row["id"])]
        assert row.pop("client_name") == names[item["client"]]
        for column, value in row.items():
            expected = item[column]
            if column in ("id", "client", "subscription"):
                expected = "" if expected is None else str(expected)
            assert value == expected, column

    # and the usage shows the month closed with the billed figures
    usage = _ok(operator.get(f"/api/v1/subscriptions/{acme_gold['id']}/usage/?period=2026-10"))
    assert (usage["overtime_amount"], usage["closed"]) == ("135.00", True)
    assert _ok(operator.get(f"/api/v1/tickets/{mail['id']}/time-entries/"))["results"][0]["billed"]

    # when October is closed again, nothing is added
    again = _ok(finance.post("/api/v1/rollups/", {"period": "2026-10"}, format="json"), 200)
    assert again == {"period": "2026-10", "closed": True, "items_created": 0}
    assert _ok(finance.get("/api/v1/billable-items/?period=2026-10"))["count"] == 4

    # and time in the closed month is refused
    refused = operator.post(
        f"/api/v1/tickets/{mail['id']}/time-entries/",
        {"hours": "1.00", "work_date": "2026-10-31"},
        format="json",
    )
    assert refused.status_code == 400
    assert refused.json()["detail"].startswith("2026-10 is closed")

    # and a correction after the close is an adjustment
    credit = _ok(
        finance.post(
            "/api/v1/billable-items/",
            {
                "client": acme["id"],
                "subscription": acme_gold["id"],
                "period": "2026-10",
                "amount": "-35.00",
                "description": "Goodwill: 0.5 h of the outage",
            },
            format="json",
        ),
        201,
    )
    assert (credit["kind"], credit["amount"], credit["currency"]) == ("adjustment", "-35.00", "EUR")
