"""The admin of mail intake: every inbound e-mail (read only) and the "Unmatched mail" list,
where an operator files an e-mail under a client (it opens a ticket) or discards it. Both
actions call one service each (tickets.intake). Registered from TicketsConfig.ready, apart
from the ticket workspace (tickets/admin.py)."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from customers.models import Client
from tickets import intake, mail_parse
from tickets.models import INBOUND_TO_REVIEW, InboundMail, UnmatchedMail

_FIELDS = (
    "received_at",
    "sender",
    "subject",
    "status",
    "reason",
    "ticket_link",
    "text",
    "message_id",
    "mailbox",
    "uidvalidity",
    "uid",
    "size",
    "handled_by",
)

_TEXT_SHOWN = 10_000  # characters of the text shown on the page; the raw mail has it all


class _InboundMailBase(admin.ModelAdmin):
    list_display = ["received_at", "sender", "subject", "status", "reason", "ticket_link"]
    list_filter = ["status"]
    search_fields = ["sender", "subject", "message_id"]
    date_hierarchy = "received_at"
    list_select_related = ["ticket"]
    fields = _FIELDS
    readonly_fields = _FIELDS

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Ticket")
    def ticket_link(self, row: InboundMail) -> str:
        if row.ticket_id is None:
            return "—"
        url = reverse("admin:tickets_ticket_change", args=[row.ticket_id])
        return format_html('<a href="{}">#{}</a>', url, row.ticket_id)

    @admin.display(description="Text")
    def text(self, row: InboundMail) -> str:
        # Plain text only (HTML mail as text), escaped: sender HTML never runs on our pages.
        body = mail_parse.mail_parse(bytes(row.raw)).text
        if len(body) > _TEXT_SHOWN:
            body = body[:_TEXT_SHOWN] + " …"
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', body or "—")


@admin.register(InboundMail)
class InboundMailAdmin(_InboundMailBase):
    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AssignForm(ActionForm):
    client = forms.ModelChoiceField(
        queryset=Client.objects.order_by("name"),
        required=False,
        help_text="For “Open a ticket for the client”.",
    )


@admin.register(UnmatchedMail)
class UnmatchedMailAdmin(_InboundMailBase):
    """The e-mails no rule could file (unknown sender, an auto-reply, too large, an error)."""

    action_form = AssignForm
    actions = ["assign_to_client", "discard"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[InboundMail]:
        return super().get_queryset(request).filter(status__in=INBOUND_TO_REVIEW)

    @admin.action(description="Open a ticket for the client chosen", permissions=["change"])
    def assign_to_client(self, request: HttpRequest, queryset: QuerySet[InboundMail]) -> None:
        try:  # the action form's own field (the whole form also wants the action's choices)
            client = AssignForm.base_fields["client"].clean(request.POST.get("client"))
        except ValidationError:
            client = None
        if client is None:
            self.message_user(request, "Choose the client first.", messages.ERROR)
            return
        for row in queryset.order_by("received_at", "pk"):
            try:
                ticket = intake.inbound_mail_assign(
                    inbound_mail=row, client=client, actor=request.user
                )
            except ValidationError as exc:
                self.message_user(request, f"{row}: {' '.join(exc.messages)}", messages.ERROR)
                continue
            self.message_user(request, f"{row}: ticket #{ticket.pk} opened for {client}.")

    @admin.action(description="Discard", permissions=["change"])
    def discard(self, request: HttpRequest, queryset: QuerySet[InboundMail]) -> None:
        done = 0
        for row in queryset:
            try:
                intake.inbound_mail_discard(inbound_mail=row, actor=request.user)
            except ValidationError as exc:
                self.message_user(request, f"{row}: {' '.join(exc.messages)}", messages.ERROR)
                continue
            done += 1
        self.message_user(request, f"{done} e-mail(s) discarded.")
