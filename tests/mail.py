"""A real SMTP server for tests (aiosmtpd's Controller, in a thread), shared by every test
that sends e-mail; the ``smtp_server`` fixture (conftest.py) starts one per test."""

import email
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class MailServer:
    """What the SMTP server saw. ``refuse`` maps an address to the reply its RCPT gets (as
    many times as the list is long; an empty list refuses it for good with a 550)."""

    port: int
    refuse: dict[str, list[str]] = field(default_factory=dict)
    received: list[tuple[list[str], Message]] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)

    def to(self, address: str) -> list[Message]:
        return [message for rcpts, message in self.received if address in rcpts]

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list
    ) -> str:
        if address in self.refuse:
            replies = self.refuse[address]
            reply = replies.pop(0) if replies else "550 5.1.1 <{}>: Recipient address rejected"
            if not replies and not reply.startswith("550"):
                del self.refuse[address]  # a temporary refusal that has run out
            self.refusals.append(address)
            return reply.format(address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.received.append((list(envelope.rcpt_tos), email.message_from_bytes(content)))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def mail_server_running(settings) -> Iterator[MailServer]:
    """A real SMTP server on a free local port, with Django's SMTP backend pointed at it."""
    server = MailServer(port=free_port())
    controller = Controller(server, hostname="127.0.0.1", port=server.port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_TIMEOUT = 10
    try:
        yield server
    finally:
        controller.stop()
