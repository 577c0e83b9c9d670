"""Files sent with the workspace's reply form: kept with the reply (and its time), or, when one
is refused, nothing saved and the reason shown beside the field."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.factories import OperatorFactory, SubscriptionFactory, TicketFactory, package_with_prices
from tests.tickets.test_admin_workspace import action_url, page_url, text_of
from tickets.models import MessageKind, TicketAttachment, TimeEntry

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _setup(settings, tmp_path, time_machine):
    settings.MEDIA_ROOT = str(tmp_path)
    settings.ATTACHMENT_MAX_BYTES = 1_000
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def operator(client):
    user = OperatorFactory(username="olga")
    client.force_login(user)
    return user


@pytest.fixture
def ticket():
    package = package_with_prices(name="Gold", included_hours=Decimal("10.00"))
    return TicketFactory(subscription=SubscriptionFactory(package=package), subject="VPN down")


def test_a_reply_with_files_and_time_in_one_submit(client, operator, ticket):
    page = client.get(page_url(ticket)).content.decode()
    assert 'enctype="multipart/form-data"' in page and 'id="reply-attachments"' in page

    response = client.post(
        action_url("reply", ticket),
        {
            "kind": MessageKind.OPERATOR_REPLY,
            "body": "The new config is attached.",
            "hours": "0.75",
            "attachments": [
                SimpleUploadedFile("vpn.conf.txt", b"remote vpn.acme.test", "text/plain"),
                SimpleUploadedFile("steps.pdf", b"%PDF-1.4", "application/pdf"),
            ],
        },
    )

    assert response.status_code == 302
    reply = ticket.messages.get()
    assert sorted(reply.attachments.values_list("filename", flat=True)) == [
        "steps.pdf",
        "vpn.conf.txt",
    ]
    assert TimeEntry.objects.get(ticket=ticket).hours == Decimal("0.75")
    assert "vpn.conf.txt" in text_of(client.get(page_url(ticket)))


@pytest.mark.parametrize(
    ("refused", "reason"),
    [
        (("dump.txt", b"x" * 1_001, "text/plain"), "dump.txt is 1,001 bytes"),
        (("run.sh", b"#!/bin/sh", "text/plain"), "run.sh: files of this kind are not accepted."),
    ],
)
def test_a_refused_file_saves_neither_reply_nor_time_nor_files(
    client, operator, ticket, refused, reason
):
    response = client.post(
        action_url("reply", ticket),
        {
            "kind": MessageKind.OPERATOR_REPLY,
            "body": "See the files.",
            "hours": "0.75",
            "attachments": [
                SimpleUploadedFile("ok.txt", b"fine", "text/plain"),
                SimpleUploadedFile(*refused),
            ],
        },
    )

    assert response.status_code == 400
    html = response.content.decode()
    error = html[html.index('id="reply-attachments-error"') :].split("</p>", 1)[0]
    assert reason in error and "hidden" not in error.split(">", 1)[0]
    assert "See the files." in html
    assert not ticket.messages.exists()
    assert not TimeEntry.objects.exists() and not TicketAttachment.objects.exists()


def test_the_download_needs_a_staff_member_who_reads_messages(client, operator, ticket):
    client.post(
        action_url("reply", ticket),
        {
            "kind": MessageKind.INTERNAL_NOTE,
            "body": "Internal file",
            "attachments": SimpleUploadedFile("notes.txt", b"secret", "text/plain"),
        },
    )
    attachment = TicketAttachment.objects.get()

    response = client.get(reverse("clientarea:attachment", args=[attachment.pk]))

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"secret"
