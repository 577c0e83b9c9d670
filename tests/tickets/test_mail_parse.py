"""Reading received e-mail without a mailbox: text parts, charsets, ids and automatic mail
(tickets/mail_parse.py), and mail the database could not store as it came."""

import pytest

from tests.factories import ClientFactory, ClientUserFactory
from tickets.intake import inbound_mail_receive
from tickets.mail_parse import mail_parse, message_id_normalise
from tickets.models import InboundStatus


def test_message_ids_are_normalised():
    assert message_id_normalise("  < abc@example.test >") == "abc@example.test"
    assert message_id_normalise("<a@b>\r\n (comment)") == "a@b"
    assert message_id_normalise("") == ""


def test_a_misspelt_charset_is_still_read():
    raw = (
        b"From: a@client.test\r\nSubject: x\r\nContent-Type: text/plain; charset=uft-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\nZa\xc5\xbc\xc3\xb3\xc5\x82\xc4\x87\r\n"
    )

    assert mail_parse(raw).text == "Zażółć"


def test_references_are_read_newest_first():
    raw = (
        b"From: a@client.test\r\nIn-Reply-To: <c@x>\r\nReferences: <a@x> <b@x>\r\n"
        b"<c@x>\r\n\r\nHi\r\n"
    )

    assert mail_parse(raw).references == ["c@x", "b@x", "a@x"]


@pytest.mark.django_db
def test_nul_characters_do_not_stop_a_mail_from_becoming_a_ticket():
    # Given Alice's mail whose subject and text carry NUL characters (PostgreSQL refuses them)
    client = ClientFactory()
    ClientUserFactory(client=client, user__email="alice@client.test")
    raw = (
        b"From: alice@client.test\r\nSubject: =?utf-8?q?Broken=00_disk?=\r\n"
        b"Message-ID: <nul@client.test>\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"\r\nThe disk\x00 is broken.\r\n"
    )

    # When it is received
    row = inbound_mail_receive(raw=raw, mailbox="desk@imap.test:993/INBOX")

    # Then it is a ticket, without the NULs
    assert row.status == InboundStatus.PROCESSED
    assert row.ticket.subject == "Broken disk"
    assert row.ticket.messages.get().body == "The disk is broken."


@pytest.mark.parametrize(
    "header",
    [
        "X-Precedence: bulk",
        "List-Unsubscribe: <mailto:leave@list.test>",
        "X-AutoReply-From: a@client.test",
        "X-Mail-Autoreply: yes",
        "X-Failed-Recipients: gone@client.test",
    ],
)
def test_more_signs_of_machine_mail_are_recognised(header):
    raw = f"From: a@client.test\r\n{header}\r\nSubject: x\r\n\r\nHi\r\n".encode()

    assert mail_parse(raw).auto_reason


@pytest.mark.parametrize(
    "sender", ["noreply+1234@shop.test", "do_not_reply@shop.test", "Bounces@list.test"]
)
def test_machine_senders_are_recognised_in_their_usual_spellings(sender):
    raw = f"From: {sender}\r\nSubject: x\r\n\r\nHi\r\n".encode()

    assert mail_parse(raw).auto_reason == f"sent by {sender.lower()}"


def test_only_the_newest_references_are_read():
    many = " ".join(f"<id{number}@x>" for number in range(5000))
    raw = f"From: a@client.test\r\nIn-Reply-To: <last@x>\r\nReferences: {many}\r\n\r\nHi\r\n"

    references = mail_parse(raw.encode()).references

    assert references[:2] == ["last@x", "id4999@x"] and len(references) == 40


def test_a_nul_in_a_header_parameter_or_a_content_type_is_read_without_an_error():
    raw = (
        b"From: a@client.test\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nSee the file\r\n"
        b"--b\r\nContent-Type: image/pn\x00g\r\n"
        b"Content-Disposition: attachment; filename*=ut\x00f-8''x.pdf\r\n\r\nDATA\r\n--b--\r\n"
    )

    parsed = mail_parse(raw)

    assert "See the file" in parsed.text
    assert all("\x00" not in a.content_type for a in parsed.attachments)
