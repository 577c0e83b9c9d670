"""Mail intake: the helpdesk's mailbox read over IMAP, each e-mail stored as it came
(InboundMail) and turned into a new ticket, a reply on its ticket, or a row an operator
looks at (the "Unmatched mail" list). What happens to each kind of mail: docs/email.md.

Order per e-mail, so that nothing is lost or doubled: the mail is read without marking it
seen, stored and processed in one transaction, and only after that commit moved to the done
folder. A crash in between leaves it in the inbox; the next run finds its Message-ID (or its
UID) stored and only moves it.
"""

import contextlib
import datetime as dt
import hashlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from customers.models import Client
from packages.models import ApprovalChannel, Subscription
from tickets import mail_parse, notifications, overage, selectors, services_overage
from tickets.attachments import attachment_add
from tickets.models import (
    INBOUND_TO_REVIEW,
    MESSAGE_BODY_MAX_LENGTH,
    InboundMail,
    InboundStatus,
    MessageKind,
    NotificationEvent,
    Ticket,
    TicketMessage,
    TicketNotification,
)
from tickets.services import ticket_create, ticket_message_add

logger = logging.getLogger(__name__)

NO_SUBJECT = "(no subject)"
NO_TEXT = "(The e-mail had no text.)"
_TRUNCATED = "\n\n[Shortened: the whole e-mail is kept with the inbound e-mail.]"
_TICKET_ROOT = "ticket-{}@{}"


@dataclass
class IntakeRun:
    """What one run of the mailbox did."""

    read: int = 0  # e-mails handled (stored, refused or found already stored) and moved
    skipped: bool = False  # another poller holds the mailbox


# --- One e-mail ----------------------------------------------------------------------------------


def _message_body(text: str) -> str:
    text = text.strip() or NO_TEXT
    if len(text) > MESSAGE_BODY_MAX_LENGTH:
        text = text[: MESSAGE_BODY_MAX_LENGTH - len(_TRUNCATED)] + _TRUNCATED
    return text


def _ticket_subject(subject: str) -> str:
    subject = subject.strip() or NO_SUBJECT
    return subject[:200]


def _own_addresses() -> set[str]:
    from email.utils import parseaddr

    values = [settings.TICKET_MAIL_FROM_EMAIL, settings.DEFAULT_FROM_EMAIL]
    values.append(settings.MAIL_INTAKE_USER)
    return {parseaddr(value)[1].lower() for value in values if "@" in value}


def _ours_came_back(parsed: mail_parse.ParsedMail) -> str:
    """Why the mail is one of ours coming back (a loop), or ""."""
    if parsed.message_id.endswith("@" + notifications.mail_host()) and (
        parsed.message_id.startswith("ticket-")
    ):
        return "our own e-mail came back (its Message-ID is ours)"
    if parsed.sender and parsed.sender in _own_addresses():
        return f"sent from our own address {parsed.sender}"
    return ""


def _author_of(users: list[Any], client_id: int) -> Any:
    return next((u for u in users if u.client_membership.client_id == client_id), None)


def _signed_ticket(parsed: mail_parse.ParsedMail) -> int | None:
    """The ticket of the first In-Reply-To/References id that is one of our signed
    Message-IDs (the signature checked)."""
    for reference in parsed.references:
        found = notifications.notification_message_id_read(f"<{reference}>")
        if found is not None:
            return found[0]
    return None


# Our ticket thread id, ``<ticket-N@host>`` (ASCII digits only: int() reads "²" too).
_ROOT_ID = re.compile(r"ticket-([0-9]{1,18})", re.ASCII)


def _claimed_ticket(parsed: mail_parse.ParsedMail) -> int | None:
    """A ticket the mail says it belongs to without proof: one of our stored inbound
    Message-IDs in its references, the ticket's thread id, or the [#N] subject tag."""
    stored = (
        InboundMail.objects.filter(message_id__in=parsed.references, ticket__isnull=False)
        .values_list("ticket_id", flat=True)
        .first()
    )
    if stored is not None:
        return stored
    host = notifications.mail_host().lower()
    for reference in parsed.references:
        head, _, domain = reference.partition("@")
        number = _ROOT_ID.fullmatch(head)
        if domain.lower() == host and number:
            return int(number[1])
    return parsed.ticket_tag


def _file(row: InboundMail, parsed: mail_parse.ParsedMail) -> None:
    """Decide what ``row`` becomes and do it: a reply, a new ticket, or a row to review."""
    came_back = _ours_came_back(parsed)
    if parsed.auto_reason or came_back:
        row.status, row.reason = InboundStatus.AUTO, parsed.auto_reason or came_back
        return
    users = selectors.client_users_by_address(address=parsed.sender)
    signed = _signed_ticket(parsed)
    if signed is not None:
        ticket = Ticket.objects.filter(pk=signed).first()
        author = _author_of(users, ticket.client_id) if ticket else None
        if ticket is None or author is None:
            row.status = InboundStatus.UNMATCHED
            row.reason = (
                f"A reply to ticket #{signed} from {parsed.sender}, who is not a portal user "
                "of its client."
                if ticket
                else f"A reply to ticket #{signed}, which no longer exists."
            )
            return
        _reply(row, parsed, ticket=ticket, author=author)
        _overage_reply(parsed, ticket=ticket, author=author)
        return
    claimed = _claimed_ticket(parsed)
    if claimed is not None:
        ticket = Ticket.objects.filter(pk=claimed).first()
        # Only a user of the ticket's own client: a subject tag is easy to forge.
        author = _author_of(users, ticket.client_id) if ticket else None
        if ticket is not None and author is not None:
            _reply(row, parsed, ticket=ticket, author=author)
            return
    clients = {user.client_membership.client_id for user in users}
    if not users:
        row.status = InboundStatus.UNMATCHED
        row.reason = f"{parsed.sender} is not the address of any client's portal user."
    elif len(clients) > 1:
        row.status = InboundStatus.UNMATCHED
        row.reason = f"{parsed.sender} is the address of users of {len(clients)} clients."
    else:
        author = users[0]
        _open(row, parsed, client=Client.objects.get(pk=author.client_membership.client_id))


def _overage_request_of(parsed: mail_parse.ParsedMail) -> tuple[int, dt.date] | None:
    """(subscription id, month) when the mail answers one of our e-mails asking for the
    approval of extra hours (its signed Message-ID names the notification)."""
    for reference in parsed.references:
        found = notifications.notification_message_id_read(f"<{reference}>")
        if found is None:
            continue
        key = (
            TicketNotification.objects.filter(
                pk=found[1], ticket_id=found[0], event=NotificationEvent.OVERAGE_REQUEST
            )
            .values_list("event_key", flat=True)
            .first()
        )
        if key is not None:
            return notifications.overage_request_read(key)
    return None


def _overage_reply(parsed: mail_parse.ParsedMail, *, ticket: Ticket, author: Any) -> None:
    """A reply to the e-mail asking for extra hours whose first line is a clear approval
    (``APPROVE 3``, ``approve 3h``) records it for that month, as the portal does. The reply
    itself is on the ticket either way; anything unclear is left to the helpdesk, and a
    refused approval (a closed month, above the client's cap) is explained in an internal
    note on the ticket."""
    request = _overage_request_of(parsed)
    if request is None:
        return
    hours = overage.approval_hours_read(mail_parse.reply_text(parsed.text))
    if hours is None:
        return
    subscription_id, month = request
    subscription = Subscription.objects.get(pk=subscription_id)
    try:
        with transaction.atomic():
            approval = services_overage.overage_approve(
                subscription=subscription,
                hours=hours,
                user=author,
                month=month,
                channel=ApprovalChannel.EMAIL,
            )
    except ValidationError as exc:
        note = (
            f"The reply reads as an approval of {hours} extra hours for {month:%Y-%m}, which "
            f"was not recorded: {' '.join(exc.messages)}"
        )
    else:
        note = f"Recorded from the reply: {approval.hours} extra hours approved for {month:%Y-%m}."
    TicketMessage.objects.create(
        ticket=ticket, author=None, kind=MessageKind.INTERNAL_NOTE, body=note
    )


def _reply(row: InboundMail, parsed: mail_parse.ParsedMail, *, ticket: Ticket, author: Any) -> None:
    # ticket_message_add reopens a closed ticket and tells the helpdesk, as a portal reply.
    message = ticket_message_add(
        ticket=ticket,
        author=author,
        body=_message_body(mail_parse.reply_text(parsed.text)),
        kind=MessageKind.CLIENT_REPLY,
    )
    row.status, row.ticket, row.ticket_message = InboundStatus.PROCESSED, ticket, message
    _attachments_keep(row, parsed, message)


def _open(
    row: InboundMail, parsed: mail_parse.ParsedMail, *, client: Client, author: Any = None
) -> Ticket:
    if author is None:
        author = _author_of(selectors.client_users_by_address(address=parsed.sender), client.pk)
    # The whole text: a first message is often a forward, whose quote is the point.
    ticket = ticket_create(
        client=client,
        subject=_ticket_subject(parsed.subject),
        body=_message_body(parsed.text),
        author=author,
        subscription=selectors.client_single_active_subscription(client_id=client.pk),
    )
    row.status, row.ticket = InboundStatus.PROCESSED, ticket
    row.ticket_message = ticket.messages.order_by("pk").first()
    if row.ticket_message is not None:
        _attachments_keep(row, parsed, row.ticket_message)
    return ticket


def _attachments_keep(
    row: InboundMail, parsed: mail_parse.ParsedMail, message: TicketMessage
) -> None:
    """Keep the e-mail's files with its message; those refused (too large, a denied kind) are
    named in the row's reason and stay in the raw e-mail."""
    refused = []
    for attachment in parsed.attachments:
        try:
            attachment_add(
                message=message,
                filename=attachment.filename,
                content_type=attachment.content_type,
                data=attachment.data,
            )
        except ValidationError as exc:
            refused.extend(exc.messages)
    if refused:
        row.reason = ("Files not kept: " + " ".join(refused))[:500]


def _stored_row(
    *,
    raw: bytes,
    message_id: str,
    mailbox: str,
    uidvalidity: int | None,
    uid: int | None,
    sender: str,
    subject: str,
    size: int,
    status: str,
    reason: str,
    now: dt.datetime,
) -> InboundMail | None:
    """Insert the row, or None when its Message-ID is stored already (a second poll, a
    second poller, a copy of the mail)."""
    row = InboundMail(
        message_id=message_id,
        mailbox=mailbox,
        uidvalidity=uidvalidity,
        uid=uid,
        sender=sender[:320],
        subject=subject[:500],
        size=size,
        raw=raw,
        raw_sha256=mail_parse.raw_sha256(raw),
        received_at=now,
        status=status,
        reason=reason[:500],
    )
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:
        return None
    return row


def _same_mail(earlier: InboundMail, parsed: mail_parse.ParsedMail) -> bool:
    """Whether a mail with a stored Message-ID is a copy of the stored one: the same sender,
    subject and text (copies differ in their Received headers and line endings)."""
    if earlier.status == InboundStatus.REFUSED:  # only its headers were kept
        return (earlier.sender, earlier.subject) == (parsed.sender, parsed.subject[:500])
    before = mail_parse.mail_parse(bytes(earlier.raw))
    return (before.sender, before.subject, before.text.split()) == (
        parsed.sender,
        parsed.subject,
        parsed.text.split(),
    )


@transaction.atomic
def inbound_mail_receive(
    *,
    raw: bytes,
    mailbox: str,
    uidvalidity: int | None = None,
    uid: int | None = None,
    now: dt.datetime | None = None,
) -> InboundMail | None:
    """Store one e-mail and file it (a new ticket, a reply, or a row to review), all in one
    transaction. Returns None when it was stored before: nothing happens twice."""
    now = now or timezone.now()
    parsed = mail_parse.mail_parse(raw)
    message_id, reason = parsed.message_id, ""
    earlier = InboundMail.objects.filter(message_id=message_id).first()
    if earlier is not None:
        if _same_mail(earlier, parsed):
            return None  # a copy: delivered twice, to two of our addresses, polled again
        # Some senders reuse a Message-ID for different mail: keep it, under its hash, for an
        # operator (filing it could add a reply twice).
        message_id = f"sha256:{mail_parse.raw_sha256(raw)}"
        reason = f"Its Message-ID was used before by inbound e-mail #{earlier.pk}."
    row = _stored_row(
        raw=raw,
        message_id=message_id,
        mailbox=mailbox,
        uidvalidity=uidvalidity,
        uid=uid,
        sender=parsed.sender,
        subject=parsed.subject,
        size=len(raw),
        status=InboundStatus.UNMATCHED,
        reason=reason,
        now=now,
    )
    if row is None or reason:
        return row
    try:
        with transaction.atomic():
            _file(row, parsed)
    except ValidationError as exc:
        row.status = InboundStatus.UNMATCHED
        row.reason = "Refused: " + "; ".join(exc.messages)
    row.reason = row.reason[:500]
    row.save(update_fields=["status", "reason", "ticket", "ticket_message"])
    return row


def inbound_mail_quarantine(
    *,
    raw: bytes,
    mailbox: str,
    uidvalidity: int | None,
    uid: int | None,
    error: str,
    now: dt.datetime | None = None,
) -> InboundMail | None:
    """Keep an e-mail that could not be processed (a bug, a mail the parser chokes on) for an
    operator, so it neither blocks the mailbox nor is lost."""
    sha = mail_parse.raw_sha256(raw)
    try:
        parsed: mail_parse.ParsedMail | None = mail_parse.mail_parse(raw)
    except Exception:  # the mail itself may be what breaks
        parsed = None
    return _stored_row(
        raw=raw,
        message_id=parsed.message_id if parsed else f"sha256:{sha}",
        mailbox=mailbox,
        uidvalidity=uidvalidity,
        uid=uid,
        sender=parsed.sender if parsed else "",
        subject=parsed.subject if parsed else "",
        size=len(raw),
        status=InboundStatus.UNMATCHED,
        reason=f"Could not be processed: {error}",
        now=now or timezone.now(),
    )


def inbound_mail_refuse(
    *,
    headers: bytes,
    size: int,
    mailbox: str,
    uidvalidity: int | None,
    uid: int | None,
    now: dt.datetime | None = None,
) -> InboundMail | None:
    """Record an e-mail over MAIL_INTAKE_MAX_BYTES with its headers only: an operator sees who
    sent what; the body is never downloaded."""
    parsed = mail_parse.mail_parse(headers)
    limit = settings.MAIL_INTAKE_MAX_BYTES
    return _stored_row(
        raw=headers,
        message_id=parsed.message_id,
        mailbox=mailbox,
        uidvalidity=uidvalidity,
        uid=uid,
        sender=parsed.sender,
        subject=parsed.subject,
        size=size,
        status=InboundStatus.REFUSED,
        reason=f"Too large: {size:,} bytes, the limit is {limit:,} (MAIL_INTAKE_MAX_BYTES).",
        now=now or timezone.now(),
    )


def _to_review(inbound_mail: InboundMail) -> InboundMail:
    row = InboundMail.objects.select_for_update().get(pk=inbound_mail.pk)
    if row.status not in INBOUND_TO_REVIEW:
        raise ValidationError(
            f"This e-mail is {row.get_status_display().lower()} already.", code="handled"
        )
    return row


@transaction.atomic
def inbound_mail_assign(*, inbound_mail: InboundMail, client: Client, actor: Any) -> Ticket:
    """An operator files an unmatched e-mail under ``client``: it opens a ticket with the
    e-mail's text (the client's users get the receipt, as for any new ticket)."""
    row = _to_review(inbound_mail)
    if row.status == InboundStatus.REFUSED:
        raise ValidationError(
            "Only the headers of this e-mail were kept (it was too large): ask the sender to "
            "send it again smaller, or open the ticket by hand.",
            code="refused",
        )
    parsed = mail_parse.mail_parse(bytes(row.raw))
    ticket = _open(row, parsed, client=client)
    row.reason = f"Assigned to {client} by {actor}."[:500]
    row.handled_by = actor
    row.save(update_fields=["status", "reason", "ticket", "ticket_message", "handled_by"])
    return ticket


@transaction.atomic
def inbound_mail_discard(*, inbound_mail: InboundMail, actor: Any) -> InboundMail:
    """An operator sets an e-mail aside: it stays stored, nobody is told."""
    row = _to_review(inbound_mail)
    row.status, row.handled_by = InboundStatus.DISCARDED, actor
    row.reason = f"Discarded by {actor}."[:500]
    row.save(update_fields=["status", "reason", "handled_by"])
    return row


# --- The mailbox ---------------------------------------------------------------------------------


def mailbox_name() -> str:
    return (
        f"{settings.MAIL_INTAKE_USER}@{settings.MAIL_INTAKE_HOST}:{settings.MAIL_INTAKE_PORT}"
        f"/{settings.MAIL_INTAKE_FOLDER}"
    )


@contextlib.contextmanager
def _mailbox_lock(name: str) -> Iterator[bool]:
    """One poller per mailbox (beat, a manual mail_fetch, a second worker): a PostgreSQL
    session advisory lock, held across the run's per-mail transactions; whoever does not get
    it skips the run. Other databases (the embedded demo) run one process: no lock."""
    if connection.vendor != "postgresql":
        yield True
        return
    digest = hashlib.sha256(f"mail-intake:{name}".encode()).digest()
    key = int.from_bytes(digest[:8], "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        (locked,) = cursor.fetchone()
    try:
        yield bool(locked)
    finally:
        if locked:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


def _connect() -> Any:
    from imap_tools import MailBox, MailBoxStartTls, MailBoxUnencrypted

    host, port = settings.MAIL_INTAKE_HOST, settings.MAIL_INTAKE_PORT
    timeout = settings.MAIL_INTAKE_TIMEOUT
    if settings.MAIL_INTAKE_SSL:
        mailbox: Any = MailBox(host, port, timeout=timeout)
    elif settings.MAIL_INTAKE_STARTTLS:
        mailbox = MailBoxStartTls(host, port, timeout=timeout)
    else:
        mailbox = MailBoxUnencrypted(host, port, timeout=timeout)
    return mailbox.login(
        settings.MAIL_INTAKE_USER,
        settings.MAIL_INTAKE_PASSWORD,
        initial_folder=settings.MAIL_INTAKE_FOLDER,
    )


def _raw_of(mailbox: Any, uid: str) -> bytes | None:
    # BODY.PEEK: reading must not mark the mail seen (the move after the commit is our mark).
    status, data = mailbox.client.uid("FETCH", uid, "(BODY.PEEK[])")
    if status != "OK":
        return None
    for item in data:
        if isinstance(item, tuple) and len(item) == 2:
            return bytes(item[1])
    return None


def mail_intake_run(*, now: dt.datetime | None = None) -> IntakeRun:
    """Read up to MAIL_INTAKE_BATCH e-mails of the mailbox, file each and move it to the done
    folder (docs/email.md). Nothing while MAIL_INTAKE_HOST is unset. Call it outside a
    transaction: each e-mail commits on its own."""
    from imap_tools import A

    run = IntakeRun()
    if not settings.MAIL_INTAKE_HOST:
        return run
    name = mailbox_name()
    done = settings.MAIL_INTAKE_DONE_FOLDER
    with _mailbox_lock(name) as locked:
        if not locked:
            run.skipped = True
            return run
        with _connect() as mailbox:
            if not mailbox.folder.exists(done):
                mailbox.folder.create(done)
            status = mailbox.folder.status(settings.MAIL_INTAKE_FOLDER, ["UIDVALIDITY"])
            uidvalidity = int(status["UIDVALIDITY"])
            uids = mailbox.uids("ALL")[: settings.MAIL_INTAKE_BATCH]
            if not uids:
                return run
            heads = {
                m.uid: m
                for m in mailbox.fetch(A(uid=uids), headers_only=True, mark_seen=False, bulk=True)
            }
            for uid in uids:
                head = heads.get(uid)
                if head is None:  # expunged meanwhile by someone else
                    continue
                if not _one(mailbox, uid=uid, head=head, name=name, validity=uidvalidity, now=now):
                    continue
                # Only after the commit: a crash before this line leaves the mail in the
                # inbox, and the next run finds it stored.
                mailbox.move(uid, done)
                run.read += 1
    return run


def _one(
    mailbox: Any, *, uid: str, head: Any, name: str, validity: int, now: dt.datetime | None
) -> bool:
    """Store and file one e-mail; False when it could not be read (it stays in the inbox)."""
    position: int | None = int(uid)
    stored = (
        InboundMail.objects.filter(mailbox=name, uidvalidity=validity, uid=position)
        .values_list("message_id", flat=True)
        .first()
    )
    if stored is not None:
        header_id = mail_parse.message_id_normalise(str(head.obj.get("Message-ID", "")))
        if not header_id or header_id == stored or stored.startswith("sha256:"):
            return True  # stored by a run that stopped before the move
        # Another mail at a stored position: the server reused the UID without a new
        # UIDVALIDITY (a mailbox restored from a backup). Read it; its position is not unique.
        position = None
    if head.size_rfc822 > settings.MAIL_INTAKE_MAX_BYTES:
        inbound_mail_refuse(
            headers=head.obj.as_bytes(),
            size=head.size_rfc822,
            mailbox=name,
            uidvalidity=validity,
            uid=position,
            now=now,
        )
        return True
    raw = _raw_of(mailbox, uid)
    if raw is None:
        return False
    try:
        inbound_mail_receive(raw=raw, mailbox=name, uidvalidity=validity, uid=position, now=now)
    except Exception as exc:  # one bad e-mail must not stop the mailbox
        logger.exception("Inbound e-mail UID %s of %s could not be processed", uid, name)
        try:
            inbound_mail_quarantine(
                raw=raw,
                mailbox=name,
                uidvalidity=validity,
                uid=position,
                error=type(exc).__name__,
                now=now,
            )
        except Exception:  # the database itself is failing: leave the mail for the next run
            logger.exception("Inbound e-mail UID %s of %s left in the mailbox", uid, name)
            return False
    return True
