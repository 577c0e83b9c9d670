"""Files sent with the portal's new-ticket and reply forms: kept with the message, or, when
one is refused, nothing saved and the reason shown beside the field."""

import re
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.factories import OperatorFactory, TicketFactory
from tickets.models import MessageKind, Ticket, TicketAttachment, TicketMessage
from tickets.services import ticket_reply_with_time

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    settings.ATTACHMENT_MAX_BYTES = 1_000


def upload(name: str, content_type: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


def field_error(html: str, name: str) -> str:
    """The text shown beside the form's field ``name``."""
    block = html[html.index(f'name="{name}"') :]
    return re.sub(r"<[^>]+>", "", block[: block.index("</div>")])


def test_a_new_ticket_keeps_its_files_and_the_client_can_download_them(signed_in):
    # Given the new-ticket form, which sends files
    page = signed_in.get(reverse("clientarea:ticket_new")).content.decode()
    assert 'enctype="multipart/form-data"' in page
    assert 'type="file" name="attachments"' in page and "multiple" in page

    # When the client opens a ticket with two files
    response = signed_in.post(
        reverse("clientarea:ticket_new"),
        {
            "subject": "Printer",
            "body": "It jams, see the photos.",
            "attachments": [
                upload("jam.png", "image/png", b"\x89PNG photo"),
                upload("log.txt", "text/plain", b"paper jam at tray 2"),
            ],
        },
    )

    # Then the ticket's first message has both, listed and downloadable on its page
    ticket = Ticket.objects.get(subject="Printer")
    assert response.status_code == 302
    message = ticket.messages.get()
    assert sorted(message.attachments.values_list("filename", "size")) == [
        ("jam.png", 10),
        ("log.txt", 19),
    ]
    html = signed_in.get(reverse("clientarea:ticket", args=[ticket.pk])).content.decode()
    assert "jam.png" in html and "log.txt" in html
    attachment = message.attachments.get(filename="log.txt")
    download = signed_in.get(reverse("clientarea:attachment", args=[attachment.pk]))
    assert b"".join(download.streaming_content) == b"paper jam at tray 2"


def test_a_reply_keeps_its_file(signed_in, portal_user):
    ticket = TicketFactory(client=portal_user.client)

    response = signed_in.post(
        reverse("clientarea:ticket_reply", args=[ticket.pk]),
        {"body": "Here is the log.", "attachments": upload("log.pdf", "application/pdf", b"%PDF")},
    )

    assert response.status_code == 302
    message = ticket.messages.get()
    assert (message.body, message.kind) == ("Here is the log.", MessageKind.CLIENT_REPLY)
    assert list(message.attachments.values_list("filename", flat=True)) == ["log.pdf"]


@pytest.mark.parametrize(
    ("refused", "reason"),
    [
        (("big.txt", "text/plain", b"x" * 1_001), "big.txt is 1,001 bytes; files may have at most"),
        (("page.html", "text/html", b"<script>"), "page.html: files of this kind are not accepted"),
        (("setup.exe", "application/pdf", b"MZ"), "setup.exe: files of this kind are not accepted"),
    ],
)
def test_a_refused_file_saves_neither_the_ticket_nor_the_other_files(signed_in, refused, reason):
    # When the client sends a good file with a refused one
    response = signed_in.post(
        reverse("clientarea:ticket_new"),
        {
            "subject": "Printer",
            "body": "It jams.",
            "attachments": [upload("ok.txt", "text/plain", b"fine"), upload(*refused)],
        },
    )

    # Then the form comes back with the reason beside the files, and nothing is saved
    assert response.status_code == 200
    html = response.content.decode()
    assert reason in field_error(html, "attachments")
    assert 'value="Printer"' in html
    assert not Ticket.objects.exists()
    assert not TicketMessage.objects.exists() and not TicketAttachment.objects.exists()


def test_a_refused_file_on_a_reply_saves_no_reply(signed_in, portal_user):
    ticket = TicketFactory(client=portal_user.client)

    response = signed_in.post(
        reverse("clientarea:ticket_reply", args=[ticket.pk]),
        {"body": "A page", "attachments": upload("x.svg", "image/svg+xml", b"<svg/>")},
    )

    assert response.status_code == 400
    assert "x.svg: files of this kind are not accepted." in field_error(
        response.content.decode(), "attachments"
    )
    assert not ticket.messages.exists() and not TicketAttachment.objects.exists()


@pytest.mark.parametrize(
    ("declared", "kept"),
    [
        ("\x00", "application/octet-stream"),
        ("text/plain\x00evil", "application/octet-stream"),
        ("Text/Plain; charset=utf-8", "text/plain"),
        ("", "application/octet-stream"),
    ],
)
def test_a_files_declared_type_is_kept_only_when_it_is_a_media_type(
    signed_in, portal_user, settings, declared, kept
):
    # given a reply whose file declares a type the browser made up
    ticket = TicketFactory(client=portal_user.client)
    response = signed_in.post(
        reverse("clientarea:ticket_reply", args=[ticket.pk]),
        {"body": "The log.", "attachments": upload("log.txt", declared, b"paper jam")},
    )
    # then the reply and its file are kept, with a type that is one
    assert response.status_code == 302
    attachment = TicketAttachment.objects.get()
    assert attachment.content_type == kept
    stored = [path.name for path in Path(settings.MEDIA_ROOT).rglob("*") if path.is_file()]
    assert stored == [Path(attachment.file.name).name]


def test_an_internal_notes_uploaded_file_never_reaches_the_portal(signed_in, portal_user):
    # Given an operator's internal note with a file, uploaded with the workspace's service
    ticket = TicketFactory(client=portal_user.client, track_time=False)
    note, _ = ticket_reply_with_time(
        ticket=ticket,
        author=OperatorFactory(),
        body="Their password is on the sticky note",
        kind=MessageKind.INTERNAL_NOTE,
        attachments=[upload("sticky.png", "image/png", b"\x89PNG secret")],
    )
    attachment = note.attachments.get()

    # Then the client sees neither the note's file on the page nor gets it by its address
    html = signed_in.get(reverse("clientarea:ticket", args=[ticket.pk])).content.decode()
    assert "sticky.png" not in html
    response = signed_in.get(reverse("clientarea:attachment", args=[attachment.pk]))
    assert response.status_code == 404


def test_the_upload_forms_have_no_inline_script(signed_in, portal_user):
    ticket = TicketFactory(client=portal_user.client)
    for url in (
        reverse("clientarea:ticket_new"),
        reverse("clientarea:ticket", args=[ticket.pk]),
    ):
        response = signed_in.get(url, secure=True)
        html = response.content.decode()
        assert "unsafe-inline" not in response["Content-Security-Policy"]
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
        assert not re.search(r"\son[a-z]+=", html)
