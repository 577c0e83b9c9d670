"""A small WHMCS on a free port: its API endpoint (includes/api.php) with the documented
request and response of AddBillableItem, its authentication and its errors."""

import json
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from tests.local_http import http_server_start, http_server_stop

INVOICE_ACTIONS = {"noinvoice", "nextcron", "nextinvoice", "duedate", "recur"}


@dataclass
class FakeWhmcs:
    identifier: str = "api-identifier"
    secret: str = "api-secret"
    clients: set[int] = field(default_factory=lambda: {7})
    billable_items: list[dict[str, str]] = field(default_factory=list)
    requests: list[dict[str, str]] = field(default_factory=list)
    # "slow": store the item, then answer after 3 s (a client with a short timeout never
    # learns the outcome); "error500": answer HTTP 500 after storing it.
    mode: str = ""
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/includes/api.php"

    def answer(self, fields: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if fields.get("identifier") != self.identifier or fields.get("secret") != self.secret:
            return 403, {"result": "error", "message": "Authentication Failed"}
        if fields.get("action", "").lower() != "addbillableitem":
            return 200, {"result": "error", "message": "Command Not Found"}
        if not fields.get("clientid", "").isdigit() or int(fields["clientid"]) not in self.clients:
            return 200, {"result": "error", "message": "Client ID Not Found"}
        for name in ("description", "amount", "unit"):
            if not fields.get(name):
                return 200, {"result": "error", "message": f"{name} is required"}
        if fields["unit"] not in ("hours", "quantity"):
            return 200, {"result": "error", "message": "Invalid unit"}
        action = fields.get("invoiceaction", "noinvoice")
        if action not in INVOICE_ACTIONS:
            return 200, {"result": "error", "message": "Invalid Invoice Action"}
        if action in ("duedate", "recur") and not fields.get("duedate"):
            return 200, {"result": "error", "message": "Due Date is required"}
        self.billable_items.append(fields)
        return 200, {"result": "success", "billableid": len(self.billable_items)}

    def start(self) -> "FakeWhmcs":
        whmcs = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", "0"))).decode()
                fields = {key: values[-1] for key, values in parse_qs(raw).items()}
                whmcs.requests.append(fields)
                if self.path != "/includes/api.php":
                    code, body = 404, {"result": "error", "message": "Not Found"}
                else:
                    code, body = whmcs.answer(fields)
                if whmcs.mode == "slow":
                    time.sleep(3)
                if whmcs.mode == "error500":
                    code, body = 500, {}
                data = json.dumps(body).encode() if fields.get("responsetype") == "json" else b""
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http_server_start(Handler)
        return self

    def stop(self) -> None:
        http_server_stop(self.server)
