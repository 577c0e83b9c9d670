"""A real HTTP receiver on a free port that checks every delivery's signature with the
Standard Webhooks library, as a billing system would."""

import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.local_http import http_server_start, http_server_stop


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    payload: Any  # the verified JSON, or None when the signature did not verify


@dataclass
class WebhookReceiver:
    secret: str
    received: list[Received] = field(default_factory=list)
    # What each path answers, in turn; the last answer repeats. An int is a status code,
    # "slow" waits 3 s before answering 200, "redirect" answers 302 to /ok.
    answers: dict[str, list[Any]] = field(default_factory=dict)
    server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> "WebhookReceiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {key.lower(): value for key, value in self.headers.items()}
                try:
                    payload = Webhook(receiver.secret).verify(body, headers)
                except WebhookVerificationError:
                    payload = None
                receiver.received.append(Received(self.path, headers, body, payload))
                queue = receiver.answers.get(self.path, [204])
                answer = queue.pop(0) if len(queue) > 1 else queue[0]
                if payload is None:
                    answer = 401
                if answer == "slow":
                    time.sleep(3)
                    answer = 200
                if answer == "redirect":
                    self.send_response(302)
                    self.send_header("Location", f"{receiver.base_url}/ok")
                else:
                    self.send_response(answer)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http_server_start(Handler)
        return self

    def stop(self) -> None:
        http_server_stop(self.server)
