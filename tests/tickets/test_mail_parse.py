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
