"""Reading one received e-mail (bytes, as the mailbox gave them): its ids, sender, text and
whether a machine sent it. Pure functions, no database (docs/email.md)."""

import hashlib
import re
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from html.parser import HTMLParser
from typing import cast

from email_reply_parser import EmailReplyParser

_ID = re.compile(r"<([^<>\s]+)>")
# "[#12]" anywhere in the subject ("AW: [#12] ...", "Subject[#12]Extra").
_TICKET_TAG = re.compile(r"\[#(\d{1,12})\]")
# Charset names seen in the wild that Python does not know.
_CHARSET_ALIASES = {
    "uft-8": "utf-8",
    "utf8": "utf-8",
    "iso-8859-8-i": "iso-8859-8",
    "gb2312": "gb18030",
    "ks_c_5601-1987": "cp949",
    "iso-2022-jp": "iso-2022-jp-ext",
}
_AUTO_PRECEDENCE = {"bulk", "junk", "list", "auto_reply"}
# Local parts of machine senders, also with a "+tag" and "_" or "." instead of "-".
_MACHINE_SENDER = re.compile(
    r"(mailer-daemon|postmaster|no-?reply|do-?not-?reply|bounces?)(\+.*)?", re.IGNORECASE
)
_AUTO_HEADERS = (
    "X-Autoreply",
    "X-Autorespond",
    "X-AutoReply-From",
    "X-Mail-Autoreply",
    "X-Failed-Recipients",
    "List-Id",
    "List-Unsubscribe",
)
# How many of a mail's references are read: In-Reply-To and the newest ones are what matter,
# and a mail may carry thousands.
REFERENCES_MAX = 40
_CONTENT_TYPE = re.compile(r"[\w.+-]+/[\w.+-]+", re.ASCII)
MESSAGE_ID_MAX = 255


def message_id_normalise(value: str) -> str:
    """A Message-ID without its <> and the spaces some providers pad it with."""
    match = _ID.search(value or "")
    found = match[1] if match else (value or "").strip().strip("<>").strip()
    return "".join(found.split())


def raw_sha256(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _header(message: Message, name: str) -> str:
    try:
        value = message.get(name)
    except (ValueError, TypeError, IndexError):  # a header the parser cannot read
        return ""
    return " ".join(_printable(str(value)).split()) if value is not None else ""


def _content_type(part: Message) -> str:
    """The part's declared type when it is a plain ``type/subtype``, else octet-stream."""
    declared = _printable(part.get_content_type())
    return declared if _CONTENT_TYPE.fullmatch(declared) else "application/octet-stream"


def _printable(text: str) -> str:
    # PostgreSQL cannot store NUL characters in text; mail can carry them.
    return text.replace("\x00", "")


def _decode(part: Message) -> str:
    try:
        return str(cast(EmailMessage, part).get_content())
    except (LookupError, UnicodeError, AssertionError):
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            return ""
        charset = (part.get_content_charset() or "utf-8").lower()
        try:
            return payload.decode(_CHARSET_ALIASES.get(charset, charset), errors="replace")
        except LookupError:
            return payload.decode("utf-8", errors="replace")


class _TextFromHtml(HTMLParser):
    _BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "head", "title"):
            self._skip += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head", "title"):
            self._skip = max(self._skip - 1, 0)
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """The readable text of an HTML body: no tags, scripts or styles; blocks on their lines."""
    parser = _TextFromHtml()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _body_text(message: EmailMessage) -> str:
    """The plain text part, else the HTML part as text; empty for attachment-only mail."""
    try:
        part = message.get_body(preferencelist=("plain", "html"))
    except (KeyError, ValueError):
        part = None
    if part is None:
        return ""
    text = _printable(_decode(part))
    if part.get_content_type() == "text/html":
        return html_to_text(text)
    return text.replace("\r\n", "\n").strip()


def reply_text(text: str) -> str:
    """A reply without the quoted history and the signature below it; the whole text when
    stripping would leave nothing."""
    stripped = EmailReplyParser.parse_reply(text).strip()
    return stripped or text.strip()


@dataclass
class MailAttachment:
    filename: str  # as the sender named it (RFC 2231 / encoded words decoded)
    content_type: str
    data: bytes


def _attachments(message: EmailMessage) -> list[MailAttachment]:
    """The files of the mail: parts marked as attachments, and named parts that are not its
    text (inline images); the text part itself never."""
    try:
        body = message.get_body(preferencelist=("plain", "html"))
    except (KeyError, ValueError):
        body = None
    found = []
    for number, part in enumerate(message.walk(), start=1):
        if part.is_multipart() or part is body:
            continue
        try:
            filename = part.get_filename() or ""
            disposition = part.get_content_disposition()
        except (ValueError, TypeError, IndexError):  # headers are parsed when first read
            filename, disposition = "", "attachment"
        if disposition != "attachment" and not filename:
            continue
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            continue
        found.append(
            MailAttachment(
                filename=filename or f"part-{number}",
                content_type=_content_type(part),
                data=data,
            )
        )
    return found


@dataclass
class ParsedMail:
    message_id: str  # normalised; "sha256:..." when the mail has none
    has_message_id: bool
    sender: str  # the one From address, lower-cased; "" when there is none
    subject: str
    text: str
    # In-Reply-To, then References from the newest (rightmost) to the oldest.
    references: list[str] = field(default_factory=list)
    auto_reason: str = ""
    ticket_tag: int | None = None
    attachments: list[MailAttachment] = field(default_factory=list)


def _sender(message: Message) -> str:
    try:
        header = message.get("From")
        addresses = getattr(header, "addresses", ())
    except (ValueError, TypeError, IndexError):
        return ""
    found = [a.addr_spec for a in addresses if "@" in (a.addr_spec or "")]
    return _printable(found[0]).strip().lower() if len(found) == 1 else ""


def _references(message: Message) -> list[str]:
    ids = _ID.findall(_header(message, "In-Reply-To"))
    ids += list(reversed(_ID.findall(_header(message, "References"))))
    return list(dict.fromkeys("".join(found.split()) for found in ids))[:REFERENCES_MAX]


def _auto_reason(message: Message, sender: str) -> str:
    """Why the mail was sent by a machine (an auto-reply, a bounce, list mail), or ""."""
    auto_submitted = _header(message, "Auto-Submitted").lower()
    if auto_submitted and auto_submitted != "no":
        return f"Auto-Submitted: {auto_submitted}"
    for name in ("Precedence", "X-Precedence"):
        precedence = _header(message, name).lower()
        if precedence in _AUTO_PRECEDENCE:
            return f"{name}: {precedence}"
    for name in _AUTO_HEADERS:
        if name in message:
            return f"{name} header"
    if _header(message, "Return-Path").replace(" ", "") == "<>":
        return "empty Return-Path (a bounce)"
    if message.get_content_type() == "multipart/report":
        return "a delivery or read report (multipart/report)"
    if not sender:
        return "no single sender address"
    if _MACHINE_SENDER.fullmatch(sender.split("@")[0].replace("_", "-").replace(".", "-")):
        return f"sent by {sender}"
    return ""


def _message_read(raw: bytes) -> EmailMessage:
    """The parsed mail. Headers are parsed when first read, so they are all read once here:
    a NUL in one (an RFC 2231 parameter) defeats the parser, and then the mail is read again
    without its NUL characters, which no part of a mail has a use for (the raw is kept)."""
    message = cast(EmailMessage, message_from_bytes(raw, policy=policy.default))
    try:
        for part in message.walk():
            part.items()
    except (ValueError, TypeError, IndexError, LookupError):
        message = cast(
            EmailMessage, message_from_bytes(raw.replace(b"\x00", b""), policy=policy.default)
        )
    return message


def mail_parse(raw: bytes) -> ParsedMail:
    """Everything intake needs of one e-mail. Never raises on malformed mail: what cannot be
    read is left empty."""
    message = _message_read(raw)
    found_id = message_id_normalise(_header(message, "Message-ID"))
    if not found_id:
        message_id = f"sha256:{raw_sha256(raw)}"
    elif len(found_id) > MESSAGE_ID_MAX:
        message_id = f"sha256:{raw_sha256(found_id.encode())}"
    else:
        message_id = found_id
    sender = _sender(message)
    subject = _header(message, "Subject")
    tag = _TICKET_TAG.search(subject)
    return ParsedMail(
        message_id=message_id,
        has_message_id=bool(found_id),
        sender=sender,
        subject=subject,
        text=_body_text(message),
        references=_references(message),
        auto_reason=_auto_reason(message, sender),
        ticket_tag=int(tag[1]) if tag else None,
        attachments=_attachments(message),
    )
