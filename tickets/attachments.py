"""Files kept with ticket messages: the checks a file must pass (size, kind), storing it under
a random name, and who may download it (one rule for the portal and the admin)."""

import re
import unicodedata
from collections.abc import Sequence
from typing import Any, Protocol

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile

from supportbilling.roles import client_id_of, is_staff_member
from tickets.models import MessageKind, TicketAttachment, TicketMessage

# Declared types refused whatever the name: pages and programs a browser or a desktop would run.
_DENIED_TYPES = {
    "text/html",
    "application/xhtml+xml",
    "image/svg+xml",
    "text/javascript",
    "application/javascript",
    "application/x-msdownload",
    "application/x-msdos-program",
    "application/x-sh",
    "application/hta",
    "application/java-archive",
}
# Served with their own type; anything else is served as application/octet-stream. Every file
# is served as a download (Content-Disposition: attachment), never shown by the browser.
SAFE_TYPES = {"image/png", "image/jpeg", "image/gif", "application/pdf", "text/plain"}
_UNSAFE_NAME = re.compile(r"[^\w.\- ()\[\]+,@&'=]")


def attachment_filename_clean(filename: str) -> str:
    """A name to show and to offer on download: no directories, no control characters."""
    name = unicodedata.normalize("NFC", filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE_NAME.sub("_", name).strip(" .")
    return name[:255] or "attachment"


# type/subtype in the characters RFC 6838 allows; parameters (";charset=...") are dropped.
_CONTENT_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")


def attachment_content_type_clean(content_type: str | None) -> str:
    """The type a sender declared, lower case, or ``application/octet-stream`` when it is
    missing or not a media type (a NUL character in it answered 500)."""
    declared = (content_type or "").split(";", 1)[0].strip().lower()
    if _CONTENT_TYPE.fullmatch(declared) and len(declared) <= 100:
        return declared
    return "application/octet-stream"


def attachment_check(*, filename: str, content_type: str, size: int) -> None:
    """Refuse a file over ATTACHMENT_MAX_BYTES, of a denied type, or with a denied ending."""
    limit = settings.ATTACHMENT_MAX_BYTES
    if size > limit:
        raise ValidationError(
            f"{filename} is {size:,} bytes; files may have at most {limit:,}.", code="too_large"
        )
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if content_type.lower() in _DENIED_TYPES or extension in settings.ATTACHMENT_DENIED_EXTENSIONS:
        raise ValidationError(
            f"{filename}: files of this kind are not accepted.", code="denied_type"
        )


def attachment_add(
    *, message: TicketMessage, filename: str, content_type: str, data: bytes
) -> TicketAttachment:
    """Keep ``data`` with ``message`` after the checks (ValidationError when refused)."""
    filename = attachment_filename_clean(filename)
    content_type = attachment_content_type_clean(content_type)
    attachment_check(filename=filename, content_type=content_type, size=len(data))
    attachment = TicketAttachment(
        message=message, filename=filename, content_type=content_type, size=len(data)
    )
    attachment.file.save(filename, ContentFile(data), save=False)
    attachment.save()
    return attachment


class Upload(Protocol):
    """A file sent with a form (Django's ``UploadedFile`` is one): read only once checked."""

    name: str | None
    content_type: str | None
    size: int | None

    def read(self, *args: Any) -> bytes: ...


def uploads_check(*, uploads: Sequence[Upload]) -> None:
    """Every refusal among ``uploads`` at once, on the form's ``attachments`` field; nothing
    is read before all have passed."""
    refused = []
    for upload in uploads:
        filename = attachment_filename_clean(upload.name or "")
        content_type = attachment_content_type_clean(upload.content_type)
        try:
            attachment_check(filename=filename, content_type=content_type, size=upload.size or 0)
        except ValidationError as exc:
            refused.extend(exc.messages)
    if refused:
        raise ValidationError({"attachments": refused})


def uploads_add(*, message: TicketMessage, uploads: Sequence[Upload]) -> list[TicketAttachment]:
    """Keep ``uploads`` with ``message`` (call ``uploads_check`` before writing anything)."""
    uploads_check(uploads=uploads)
    return [
        attachment_add(
            message=message,
            filename=upload.name or "",
            content_type=upload.content_type or "",
            data=upload.read(),
        )
        for upload in uploads
    ]


def attachment_visible(*, user: Any, attachment: TicketAttachment) -> bool:
    """Staff who may read ticket messages see every file; a client user those of their own
    client's tickets, never an internal note's; nobody else any."""
    if is_staff_member(user):
        return bool(user.has_perm("tickets.view_ticketmessage"))
    message = attachment.message
    client_id = client_id_of(user)
    return (
        client_id is not None
        and message.ticket.client_id == client_id
        and message.kind != MessageKind.INTERNAL_NOTE
    )


def attachment_for_download(*, user: Any, attachment_id: int) -> TicketAttachment:
    """The attachment if ``user`` may see it; TicketAttachment.DoesNotExist otherwise (a file
    one may not see does not exist, as another client's ticket does not)."""
    attachment = TicketAttachment.objects.select_related("message__ticket").get(pk=attachment_id)
    if not attachment_visible(user=user, attachment=attachment):
        raise TicketAttachment.DoesNotExist
    return attachment
