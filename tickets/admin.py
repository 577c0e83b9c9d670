"""The operator's workspace: the ticket change page with its conversation, time panel,
entries, live timer and audit trail, and the operator report.

Every button is an extra admin URL (as in ``UserAdmin.get_urls``): it checks the permission,
calls one service and redirects back; a refusal re-renders the ticket page with the message
and the form as it was typed.
"""

import copy
import csv
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.options import IS_POPUP_VAR, TO_FIELD_VAR
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse, QueryDict
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from customers.admin_filters import ClientListFilter, client_filter_link
from customers.forms import NotificationPreferenceForm
from customers.services import notification_preference_set
from packages.models import Subscription, SupportPackage
from supportbilling.admin_prefill import RelatedPrefillAdmin
from supportbilling.admin_readonly import ReadOnlyAdmin
from supportbilling.periods import (
    local_today,
    period_add,
    period_current,
    period_last_day,
    period_parse,
    period_previous,
)
from supportbilling.spreadsheet import spreadsheet_text
from tickets import admin_workspace, selectors, services
from tickets.forms import (
    AssignForm,
    EntryChangeForm,
    OperatorReportForm,
    ReplyForm,
    ReplyPreviewForm,
    ServiceAddForm,
    SubscriptionChoiceForm,
    TicketAddForm,
    TimeLogForm,
)
from tickets.hours import hours_stepped
from tickets.models import (
    AuditEvent,
    MessageKind,
    Ticket,
    TicketMessage,
    TicketPriority,
    TicketStatus,
    TimeEntry,
    TimeTimer,
)

# What each workspace action needs. Operators hold all of them; Finance none of the writes.
PERM_LOG_TIME = "tickets.add_timeentry"
PERM_CHANGE_TIME = "tickets.change_timeentry"
PERM_DELETE_TIME = "tickets.delete_timeentry"
PERM_NO_CHARGE = services.NO_CHARGE_PERMISSION
PERM_CHANGE_TICKET = "tickets.change_ticket"
PERM_REPLY = "tickets.add_ticketmessage"
PERM_TIMER = "tickets.add_timetimer"
PERM_ADD_SERVICE = "packages.add_subscription"

HOURS_STEPS_MAX = 96  # quarter hours in a day: one press of -/+ moves by one
MONTH_PAGES_MAX = 10_000  # pages of a closed month's entries: far beyond any real month


class EntriesByOperatorFilter(admin.SimpleListFilter):
    title = "operator (time logged by)"
    parameter_name = "operator"

    def lookups(self, request, model_admin):
        return [(str(user.pk), user.get_username()) for user in selectors.operators_with_entries()]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        try:
            operator_id = int(self.value())
        except ValueError:
            return queryset.none()
        return selectors.tickets_with_entries_by(tickets=queryset, operator_id=operator_id)


class AssigneeFilter(admin.SimpleListFilter):
    title = "assignee"
    parameter_name = "assigned"

    def lookups(self, request, model_admin):
        return [("me", "My tickets"), ("none", "Unassigned")]

    def queryset(self, request, queryset):
        if self.value() == "me":
            return queryset.filter(assignee_id=request.user.pk)
        if self.value() == "none":
            return queryset.filter(assignee__isnull=True)
        return queryset


@admin.register(Ticket)
class TicketAdmin(RelatedPrefillAdmin):
    list_display = [
        "id",
        "subject",
        "client_column",
        "subscription",
        "status",
        "assignee",
        "hours_this_period",
    ]  # whether a ticket tracks time: the "By track time" filter and the ticket's page
    list_filter = [
        "status",
        AssigneeFilter,
        ClientListFilter,
        EntriesByOperatorFilter,
        "track_time",
        "priority",
    ]
    list_select_related = ["client", "subscription__package", "assignee"]
    search_fields = ["subject", "client__name", "id"]
    actions = ["assign_to_me", "unassign"]

    # --- list and the plain form -----------------------------------------------------------

    def get_queryset(self, request):
        tickets = (
            super()
            .get_queryset(request)
            .select_related("client", "subscription__package", "assignee")
        )
        return selectors.tickets_with_hours(tickets=tickets, month=period_current())

    def _assign_selected(self, request: HttpRequest, tickets: Any, assignee: Any) -> None:
        """One ``ticket_assign`` per ticket; a refusal (the user is not an operator) stops at
        the first ticket, as each would be refused alike."""
        done = 0
        for ticket in tickets:
            try:
                services.ticket_assign(ticket=ticket, assignee=assignee, actor=request.user)
            except ValidationError as error:
                self.message_user(request, " ".join(error.messages), messages.ERROR)
                return
            done += 1
        who = "you" if assignee is not None else "nobody"
        self.message_user(request, f"{done} ticket(s) now assigned to {who}.", messages.SUCCESS)

    @admin.action(description="Assign to me", permissions=["change"])
    def assign_to_me(self, request: HttpRequest, queryset: Any) -> None:
        self._assign_selected(request, queryset, request.user)

    @admin.action(description="Unassign", permissions=["change"])
    def unassign(self, request: HttpRequest, queryset: Any) -> None:
        self._assign_selected(request, queryset, None)

    @admin.display(description="client", ordering="client__name")
    def client_column(self, ticket: Ticket) -> str:
        return client_filter_link(ticket.client)

    @admin.display(description="Hours this month", ordering="hours_this_period")
    def hours_this_period(self, ticket: selectors.TicketWithHours) -> str:
        return selectors.hours_short(ticket.hours_this_period)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = TicketAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["client", "subject", "priority", "body"]
        return [
            "subject",
            "priority",
            "client",
            "subscription",
            "status",
            "assignee",
            "track_time",
        ]

    def get_readonly_fields(self, request, obj=None):
        # Subscription, status, assignee and tracking change through the workspace's services.
        if obj is None:
            return []
        return ["client", "subscription", "status", "assignee", "track_time"]

    def get_autocomplete_fields(self, request):
        return ["client"]

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=["subject", "priority", "updated_at"])
            return
        ticket = services.ticket_create(
            client=form.cleaned_data["client"],
            subject=form.cleaned_data["subject"],
            body=form.cleaned_data["body"],
            priority=form.cleaned_data["priority"],
            author=request.user,
            kind=MessageKind.OPERATOR_REPLY,
        )
        obj.pk = ticket.pk
        obj.created_at, obj.updated_at = ticket.created_at, ticket.updated_at
        obj._state.adding = False

    def has_delete_permission(self, request, obj=None):
        return False  # tickets are closed, not deleted: their time and audit trail stay

    # --- the workspace on the change page --------------------------------------------------

    def get_object(self, request, object_id, from_field=None):
        # The workspace reads the ticket, then Django's change view reads it again: one query.
        cache = request.__dict__.setdefault("_tickets_read", {})
        key = (object_id, from_field)
        if key not in cache:
            cache[key] = super().get_object(request, object_id, from_field)
        return cache[key]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The ticket page (a GET, or a refused action shown as one) is the workspace's own
        lean page, ``workspace_view``; Django's change form only takes the POST of "Save
        ticket details" (and shows its refusal with the workspace above it)."""
        popup = IS_POPUP_VAR in request.GET or TO_FIELD_VAR in request.GET
        if request.method == "GET" and not popup and object_id.isdigit() and len(object_id) < 19:
            ticket = selectors.ticket_for_workspace(ticket_id=int(object_id))
            if ticket is not None:
                return self.workspace_view(request, ticket, extra_context)
        ticket = self.get_object(request, unquote(object_id))
        context = dict(extra_context or {})
        if ticket is not None:
            context = {**self._workspace_context(request, ticket, context), **context}
        return super().change_view(request, object_id, form_url, extra_context=context)

    def workspace_view(
        self, request: HttpRequest, ticket: Ticket, extra_context: dict[str, Any] | None
    ) -> HttpResponse:
        """The ticket page without the admin's change form machinery (model form, fieldsets,
        inlines, related-widget wrappers, the sidebar's app list): the workspace, and the
        ticket's own fields written by hand under "Ticket details", which post to the admin's
        change view. The long lists come from the fragment cache (``admin_workspace``)."""
        if not self.has_view_or_change_permission(request, ticket):
            raise PermissionDenied
        site = self.admin_site
        context = {
            "site_title": site.site_title,
            "site_header": site.site_header,
            "site_url": site.site_url,
            "has_permission": True,  # admin_view let the request in
            "is_nav_sidebar_enabled": False,
            "available_apps": [],
            "is_popup": False,
            "title": f"Change {self.opts.verbose_name}",
            "subtitle": str(ticket),
            "opts": self.opts,
            "original": ticket,
            "has_change_permission": self.has_change_permission(request, ticket),
            "priorities": TicketPriority.choices,
            "subject_max_length": Ticket._meta.get_field("subject").max_length,
            **self._workspace_context(request, ticket, extra_context),
            **(extra_context or {}),
        }
        request.current_app = site.name
        return TemplateResponse(request, "admin/tickets/ticket/workspace.html", context)

    @staticmethod
    def _bound_choices(extra_context: dict[str, Any]) -> dict[str, Any]:
        """The assignee and package typed in a refused form, to be chosen again."""
        typed = {}
        for form_name, field in (("assign_form", "assignee"), ("service_form", "package")):
            form = extra_context.get(form_name)
            if form is not None and form.is_bound:
                typed[field] = form[field].value() or ""
        return typed

    def _workspace_context(
        self, request: HttpRequest, ticket: Ticket, extra_context: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        user = request.user
        can_log = user.has_perm(PERM_LOG_TIME)
        can_change = user.has_perm(PERM_CHANGE_TICKET)
        can_change_time = user.has_perm(PERM_CHANGE_TIME)
        can_delete_time = user.has_perm(PERM_DELETE_TIME)
        can_edit = can_change_time or can_delete_time
        panel = selectors.ticket_time_panel(ticket=ticket) if ticket.track_time else None
        # The operator's running timers: the header lists them, the time panel shows this
        # ticket's (one query for both).
        operator_timers = selectors.operator_timers(operator_id=request.user.pk or 0)
        timer = next((t for t in operator_timers if t.ticket_id == ticket.pk), None)
        assign_form = AssignForm(initial={"assignee": ticket.assignee_id})
        service_form = ServiceAddForm()
        bound = self._bound_choices(extra_context or {})
        selected = {
            "assignee": str(bound.get("assignee", ticket.assignee_id or "")),
            "package": str(bound.get("package", "")),
        }
        lists, choices = admin_workspace.workspace_parts(
            ticket, can_edit=can_edit, selected=selected
        )
        shown = self._entry_edit_shown(request, ticket, can_edit)
        entry_rows = lists["entry_rows"]
        month_entries = None
        if request.GET.get("month") or shown["edit_entry"] is not None:
            # A closed month listed or an entry being edited: these rows are written afresh.
            entries = selectors.ticket_entries(ticket_id=ticket.pk)
            month_entries = self._month_entries_shown(request, ticket, entries.closed_months)
            entry_rows = admin_workspace.entry_table_rows(
                entries,
                can_edit=can_edit,
                edit_entry=shown["edit_entry"],
                month_entries=month_entries,
            )
        return {
            "ticket": ticket,
            "lists": lists,
            "entry_table_rows": entry_rows,
            "panel": panel,
            "month_entries": month_entries,
            **shown,
            "timer": timer,
            "operator_timers": operator_timers,
            "server_now": timezone.now(),
            "log_form": TimeLogForm(initial={"work_date": local_today().isoformat()}),
            "reply_form": ReplyForm(initial={"work_date": local_today().isoformat()}),
            "choices": choices,
            "assign_form": assign_form,
            # "Assign to me" only for whom the service would accept.
            "can_take": can_change and user.pk in choices["operator_ids"],
            "subscription_form": SubscriptionChoiceForm(),
            "service_form": service_form,
            "can_log_time": can_log,
            "can_change_time": can_change_time,
            "can_delete_time": can_delete_time,
            "can_mark_no_charge": user.has_perm(PERM_NO_CHARGE),
            "can_change_ticket": can_change,
            "can_reply": user.has_perm(PERM_REPLY),
            "can_use_timer": user.has_perm(PERM_TIMER),
            "can_add_service": user.has_perm(PERM_ADD_SERVICE) and can_log,
            "ticket_closed": ticket.status == TicketStatus.CLOSED,
            "url_hours_step": reverse("admin:tickets_ticket_hours_step"),
            "attachment_max_bytes": settings.ATTACHMENT_MAX_BYTES,
            **self._action_urls(ticket),
        }

    @staticmethod
    def _month_entries_shown(
        request: HttpRequest, ticket: Ticket, closed: list[selectors.ClosedMonthEntries]
    ) -> selectors.MonthEntriesPage | None:
        """``?month=2026-10&page=2``: the entries of a closed month, listed on demand (the
        page only summarises closed months). A month that is not one of them shows nothing."""
        wanted = request.GET.get("month", "")
        if not wanted:
            return None
        try:
            month = period_parse(wanted)
            page = int(request.GET.get("page", "1"))
        except (ValidationError, ValueError):
            messages.warning(request, "That month cannot be shown: use a month listed below.")
            return None
        if month not in {row.month for row in closed} or not 1 <= page <= MONTH_PAGES_MAX:
            messages.warning(request, f"No closed month {wanted} with entries on this ticket.")
            return None
        return selectors.ticket_month_entries(ticket_id=ticket.pk, month=month, page=page)

    @staticmethod
    def _entry_edit_shown(request: HttpRequest, ticket: Ticket, can_change: bool) -> dict[str, Any]:
        """``?edit=<id>``: the one edit form of the page, loaded with that entry. One form
        opened on demand instead of one per entry keeps the page's cost flat."""
        wanted = request.GET.get("edit", "")
        if not wanted or not can_change:
            return {"edit_entry": None, "entry_form": None}
        entry = None
        if wanted.isdigit() and len(wanted) < 19:
            entry = selectors.ticket_entry_editable(ticket_id=ticket.pk, entry_id=int(wanted))
        if entry is None:
            messages.warning(
                request,
                "That entry cannot be changed here: it is not on this ticket or its "
                "month is closed.",
            )
            return {"edit_entry": None, "entry_form": None}
        form = EntryChangeForm(
            initial={"hours": entry.hours, "work_date": entry.work_date, "note": entry.note}
        )
        return {"edit_entry": entry, "entry_form": form}

    def _action_urls(self, ticket: Ticket) -> dict[str, str]:
        names = ["log", "reply", "reply_preview", "assign", "subscription", "tracking", "status"]
        names += ["timer_start", "timer_stop", "timer_cancel"]
        return {
            f"url_{name}": reverse(f"admin:tickets_ticket_{name}", args=[ticket.pk])
            for name in names
        }

    def workspace_refuse(
        self,
        request: HttpRequest,
        ticket: Ticket,
        error: ValidationError | None,
        **bound_forms: Any,
    ) -> HttpResponse:
        """Show the service's refusal on the ticket page, with the forms as they were typed.
        Also used by billing's "add a support service" view."""
        if error is not None:
            for text in error.messages:
                messages.error(request, text)
        for form in bound_forms.values():
            if hasattr(form, "errors"):
                for field, errors in form.errors.items():
                    if field in getattr(form, "errors_beside", ()):
                        continue  # the template shows these beside their field
                    for text in errors:
                        label = "" if field == "__all__" else f"{form[field].label}: "
                        messages.error(request, f"{label}{text}")
        # Render the change page as a GET: the POST was for the action, not the ticket form.
        page_request = copy.copy(request)
        page_request.method = "GET"
        page_request.POST = QueryDict()
        response = self.change_view(page_request, str(ticket.pk), extra_context=bound_forms)
        response.status_code = 400
        return response

    @staticmethod
    def _errors_to_fields(form: Any, error: ValidationError) -> ValidationError | None:
        """Put each refusal of the services on the field it is about (``errors_beside``): a
        time service's by its code, a message's by its field; return the rest, which concerns
        the ticket as a whole."""
        beside = getattr(form, "errors_beside", ())
        if hasattr(error, "error_dict"):
            rest_dict = {}
            for name, items in error.error_dict.items():
                if name in beside:
                    for item in items:
                        form.add_error(name, item)
                else:
                    rest_dict[name] = items
            return ValidationError(rest_dict) if rest_dict else None
        rest = []
        for item in error.error_list:
            field = services.TIME_ERROR_FIELDS.get(item.code or "")
            if field in beside:
                form.add_error(field, item)
            else:
                rest.append(item)
        return ValidationError(rest) if rest else None

    def _back(self, ticket: Ticket, anchor: str = "") -> HttpResponseRedirect:
        url = reverse("admin:tickets_ticket_change", args=[ticket.pk])
        return HttpResponseRedirect(f"{url}#{anchor}" if anchor else url)

    def _ticket_for(self, request: HttpRequest, ticket_id: int, perm: str) -> Ticket:
        if not request.user.has_perm(perm):
            raise PermissionDenied
        return get_object_or_404(Ticket.objects.select_related("client"), pk=ticket_id)

    # --- the actions -------------------------------------------------------------------------

    def get_urls(self):
        def wrap(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
            return self.admin_site.admin_view(require_POST(view))

        actions = [
            ("log", "time/log/", self.log_time_view),
            ("reply", "reply/", self.reply_view),
            ("reply_preview", "reply/preview/", self.reply_preview_view),
            ("assign", "assign/", self.assign_view),
            ("subscription", "subscription/", self.subscription_view),
            ("service_add", "service/", self.service_add_view),
            ("tracking", "tracking/", self.tracking_view),
            ("status", "status/", self.status_view),
            ("timer_start", "timer/start/", self.timer_start_view),
            ("timer_stop", "timer/stop/", self.timer_stop_view),
            ("timer_cancel", "timer/cancel/", self.timer_cancel_view),
        ]
        urls = [
            path(f"<int:ticket_id>/{route}", wrap(view), name=f"tickets_ticket_{name}")
            for name, route, view in actions
        ]
        urls += [
            path(
                "mail-preferences/",
                self.admin_site.admin_view(require_http_methods(["GET", "POST"])(self.mail_view)),
                name="tickets_mail_preferences",
            ),
            path(
                "hours/step/",
                self.admin_site.admin_view(require_GET(self.hours_step_view)),
                name="tickets_ticket_hours_step",
            ),
            path(
                "<int:ticket_id>/time/<int:entry_id>/change/",
                wrap(self.entry_change_view),
                name="tickets_ticket_entry_change",
            ),
            path(
                "<int:ticket_id>/time/<int:entry_id>/no-charge/",
                wrap(self.entry_no_charge_view),
                name="tickets_ticket_entry_no_charge",
            ),
            path(
                "<int:ticket_id>/time/<int:entry_id>/delete/",
                wrap(self.entry_delete_view),
                name="tickets_ticket_entry_delete",
            ),
        ]
        return urls + super().get_urls()

    def mail_view(self, request: HttpRequest) -> HttpResponse:
        """Which e-mails the signed-in staff member wants (any staff member, for themselves)."""
        form = NotificationPreferenceForm.for_user(request.user, request.POST)
        if request.method == "POST" and form.is_valid():
            notification_preference_set(user=request.user, **form.cleaned_data)
            messages.success(request, "Your e-mail settings are saved.")
            return HttpResponseRedirect(reverse("admin:tickets_mail_preferences"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Your e-mails",
            "form": form,
        }
        return TemplateResponse(request, "admin/tickets/mail_preferences.html", context)

    def hours_step_view(self, request: HttpRequest) -> JsonResponse:
        """The -/+ buttons beside an hours box ask here, so the box reads hours with the
        server's own grammar: ``?hours=1h 15m&steps=1`` -> ``{"hours": "1.50"}``, or a 400 with
        the server's message (``{"error": ...}``) that the box shows, leaving what was typed."""
        try:
            steps = int(request.GET.get("steps", "0"))
        except ValueError:
            steps = HOURS_STEPS_MAX + 1
        if abs(steps) > HOURS_STEPS_MAX:
            message = f"steps must be a whole number from -{HOURS_STEPS_MAX} to {HOURS_STEPS_MAX}."
            return JsonResponse({"error": message}, status=400)
        try:
            hours = hours_stepped(request.GET.get("hours", ""), steps=steps)
        except ValidationError as error:
            return JsonResponse({"error": " ".join(error.messages)}, status=400)
        return JsonResponse({"hours": str(hours)})

    def log_time_view(self, request: HttpRequest, ticket_id: int) -> HttpResponse:
        """Save time (a new entry, the ticket stays as it is) or close the ticket and save."""
        ticket = self._ticket_for(request, ticket_id, PERM_LOG_TIME)
        form = TimeLogForm(request.POST)
        if not form.is_valid():
            return self.workspace_refuse(request, ticket, None, log_form=form)
        close = "close" in request.POST
        hours, note = form.cleaned_data["hours"], form.cleaned_data["note"]
        try:
            if close:
                entry = services.ticket_close(
                    ticket=ticket,
                    actor=request.user,
                    hours=hours,
                    work_date=form.cleaned_data["work_date"],
                    note=note,
                    pending_ok=form.cleaned_data["pending_ok"],
                )
            else:
                entry = services.time_entry_log(
                    ticket=ticket,
                    operator=request.user,
                    hours=hours,
                    work_date=form.cleaned_data["work_date"],
                    note=note,
                    pending_ok=form.cleaned_data["pending_ok"],
                )
        except ValidationError as error:
            rest = self._errors_to_fields(form, error)
            return self.workspace_refuse(request, ticket, rest, log_form=form)
        saved = []
        if entry:
            day = "" if entry.work_date == local_today() else f" on {entry.work_date:%Y-%m-%d}"
            saved = [f"Saved {selectors.hours_short(entry.hours)} h{day}."]
        messages.success(request, " ".join([*saved, "Ticket closed."] if close else saved))
        return self._back(ticket, "time")

    def entry_change_view(self, request: HttpRequest, ticket_id: int, entry_id: int):
        ticket = self._ticket_for(request, ticket_id, PERM_CHANGE_TIME)
        entry = get_object_or_404(TimeEntry, pk=entry_id, ticket_id=ticket.pk)
        form = EntryChangeForm(request.POST)
        bound = {"entry_form": form, "edit_entry": entry}
        if not form.is_valid():
            return self.workspace_refuse(request, ticket, None, **bound)
        try:
            services.time_entry_change(
                entry=entry,
                actor=request.user,
                hours=form.cleaned_data["hours"],
                work_date=form.cleaned_data["work_date"],
                note=form.cleaned_data["note"],
            )
        except ValidationError as error:
            rest = self._errors_to_fields(form, error)
            return self.workspace_refuse(request, ticket, rest, **bound)
        messages.success(request, "The entry was changed.")
        return self._back(ticket, "entries")

    def entry_no_charge_view(self, request: HttpRequest, ticket_id: int, entry_id: int):
        """Mark an entry no charge (with its reason) or charge it again."""
        ticket = self._ticket_for(request, ticket_id, "tickets.view_ticket")
        entry = get_object_or_404(TimeEntry, pk=entry_id, ticket_id=ticket.pk)
        no_charge = bool(request.POST.get("no_charge"))
        try:
            services.time_entry_no_charge_set(
                entry=entry,
                actor=request.user,
                no_charge=no_charge,
                reason=request.POST.get("no_charge_reason", ""),
            )
        except PermissionDenied as refusal:
            # A 403 that still says why, on the ticket's page.
            response = self.workspace_refuse(request, ticket, ValidationError(str(refusal)))
            response.status_code = 403
            return response
        except ValidationError as error:
            return self.workspace_refuse(request, ticket, error)
        hours = selectors.hours_short(entry.hours)
        if no_charge:
            messages.success(request, f"The entry of {hours} h is at no charge.")
        else:
            messages.success(request, f"The entry of {hours} h is charged again.")
        return self._back(ticket, "entries")

    def entry_delete_view(self, request: HttpRequest, ticket_id: int, entry_id: int):
        ticket = self._ticket_for(request, ticket_id, PERM_DELETE_TIME)
        entry = get_object_or_404(TimeEntry, pk=entry_id, ticket_id=ticket.pk)
        try:
            services.time_entry_delete(entry=entry, actor=request.user)
        except ValidationError as error:
            return self.workspace_refuse(request, ticket, error)
        hours = selectors.hours_short(entry.hours)
        messages.success(request, f"The entry of {hours} h was deleted.")
        return self._back(ticket, "entries")

    def reply_view(self, request: HttpRequest, ticket_id: int) -> HttpResponse:
        """Reply (or add a note) and, when hours are typed, log them in the same transaction."""
        ticket = self._ticket_for(request, ticket_id, PERM_REPLY)
        form = ReplyForm(request.POST, request.FILES)
        if not form.is_valid():
            return self.workspace_refuse(request, ticket, None, reply_form=form)
        hours = form.cleaned_data["hours"]
        if hours.strip() and not request.user.has_perm(PERM_LOG_TIME):
            raise PermissionDenied
        try:
            message, entry = services.ticket_reply_with_time(
                ticket=ticket,
                author=request.user,
                body=form.cleaned_data["body"],
                kind=form.cleaned_data["kind"],
                status_after=form.cleaned_data["status_after"] or None,
                hours=hours,
                work_date=form.cleaned_data["work_date"],
                attachments=form.cleaned_data["attachments"],
                pending_ok=form.cleaned_data["pending_ok"],
            )
        except ValidationError as error:
            rest = self._errors_to_fields(form, error)
            return self.workspace_refuse(request, ticket, rest, reply_form=form)
        saved = [f"{message.get_kind_display()} added."]
        if entry is not None:
            day = "" if entry.work_date == local_today() else f" on {entry.work_date:%Y-%m-%d}"
            saved.append(f"Saved {selectors.hours_short(entry.hours)} h{day}.")
        messages.success(request, " ".join(saved))
        return self._back(ticket, "conversation")

    def reply_preview_view(self, request: HttpRequest, ticket_id: int) -> JsonResponse:
        """The reply being typed as the client will see it in the portal (its message
        template, its escaping), as ``{"html": ...}``; nothing is saved. An internal note is
        never shown to the client, and the answer says so instead."""
        ticket = self._ticket_for(request, ticket_id, PERM_REPLY)
        form = ReplyPreviewForm(request.POST)
        if not form.is_valid():
            errors = [str(text) for texts in form.errors.values() for text in texts]
            return JsonResponse({"error": " ".join(errors)}, status=400)
        kind = form.cleaned_data["kind"]
        body = form.cleaned_data["body"].strip()
        if kind == MessageKind.INTERNAL_NOTE:
            html = render_to_string("admin/tickets/ticket/reply_preview_internal.html")
            return JsonResponse({"html": html, "shown_to_client": False})
        # Never saved: the portal's template needs only what a saved message would have.
        message = TicketMessage(
            ticket=ticket,
            author_id=request.user.pk,
            kind=kind,
            body=body,
            created_at=timezone.now(),
        )
        html = render_to_string(
            "clientarea/_message.html", {"message": message, "client": ticket.client}
        )
        return JsonResponse({"html": html, "shown_to_client": True})

    def assign_view(self, request: HttpRequest, ticket_id: int) -> HttpResponse:
        ticket = self._ticket_for(request, ticket_id, PERM_CHANGE_TICKET)
        form = AssignForm(request.POST)
        if not form.is_valid():
            return self.workspace_refuse(request, ticket, None, assign_form=form)
        assignee_id = form.cleaned_data["assignee"]
        # Whether the user may be assigned is the service's rule.
        assignee = None
        if assignee_id is not None:
            assignee = get_user_model().objects.filter(pk=assignee_id).first()
        try:
            if assignee_id is not None and assignee is None:
                raise ValidationError("Choose one of the operators.")
            services.ticket_assign(ticket=ticket, assignee=assignee, actor=request.user)
        except ValidationError as error:
            return self.workspace_refuse(request, ticket, error, assign_form=form)
        who = assignee.get_username() if assignee is not None else "nobody"
        messages.success(request, f"The ticket is assigned to {who}.")
        return self._back(ticket)

    def subscription_view(self, request: HttpRequest, ticket_id: int) -> HttpResponse:
        ticket = self._ticket_for(request, ticket_id, PERM_CHANGE_TICKET)
        form = SubscriptionChoiceForm(request.POST)
        if not form.is_valid():
            return self.workspace_refuse(request, ticket, None, subscription_form=form)
        # Whose it is, and whether it is active, is the service's rule.
        subscription = Subscription.objects.filter(pk=form.cleaned_data["subscription"]).first()
        try:
            if subscription is None:
                raise ValidationError("Choose one of the client's subscriptions.")
            services.ticket_subscription_set(
                ticket=ticket, subscription=subscription, actor=request.user
            )
        except ValidationError as error:
            return self.workspace_refuse(request, ticket, error, subscription_form=form)
        messages.success(request, f"Time on this ticket now goes to {subscription}.")
        return self._back(ticket, "time")

    def service_add_view(self, request: HttpRequest, ticket_id: int) -> HttpResponse:
        """Sell the client a support package from the ticket and book the ticket's time to it."""
        ticket = self._ticket_for(request, ticket_id, PERM_LOG_TIME)
        if not request.user.has_perm(PERM_ADD_SERVICE):
            raise PermissionDenied
        form = ServiceAddForm(request.POST)
        if not form.is_valid():
            return self.workspace_refuse(request, ticket, None, service_form=form)
        package = SupportPackage.objects.filter(pk=form.cleaned_data["package"]).first()
        try:
            if package is None:
                raise ValidationError("Choose one of the packages offered.")
            subscription = services.ticket_service_add(
                ticket=ticket, package=package, actor=request.user
            )
        except ValidationError as error:
            return self.workspace_refuse(request, ticket, error, service_form=form)
        messages.success(
            request, f"{subscription.package.name} added for {ticket.client.name}; time goes to it."
        )
        return self._back(ticket, "time")

    def tracking_view(self, request: HttpRequest, ticket_id: int) -> HttpResponse:
        ticket = self._ticket_for(request, ticket_id, PERM_CHANGE_TICKET)
        track_time = request.POST.get("track_time") == "on"
        services.ticket_tracking_set(ticket=ticket, track_time=track_time, actor=request.user)
        messages.success(
            request,
            "This ticket tracks time." if track_time else "This ticket no longer tracks time.",
        )
        return self._back(ticket)

    def status_view(self, request: HttpRequest, ticket_id: int) -> HttpResponse:
        """Close or reopen without a message or time."""
        ticket = self._ticket_for(request, ticket_id, PERM_CHANGE_TICKET)
        status = request.POST.get("status", "")
        try:
            services.ticket_status_set(ticket=ticket, status=status, actor=request.user)
        except ValidationError as error:
            return self.workspace_refuse(request, ticket, error)
        messages.success(request, f"The ticket is {ticket.get_status_display().lower()}.")
        return self._back(ticket)

    def timer_start_view(self, request: HttpRequest, ticket_id: int) -> HttpResponse:
        ticket = self._ticket_for(request, ticket_id, PERM_TIMER)
        try:
            services.timer_start(ticket=ticket, operator=request.user)
        except ValidationError as error:
            return self.workspace_refuse(request, ticket, error)
        messages.success(request, "Timer started.")
        return self._back(ticket, "time")

    def timer_stop_view(self, request: HttpRequest, ticket_id: int) -> HttpResponse:
        ticket = self._ticket_for(request, ticket_id, PERM_LOG_TIME)
        note = request.POST.get("note", "")[:500]
        try:
            entry = services.timer_stop(ticket=ticket, operator=request.user, note=note)
        except ValidationError as error:
            return self.workspace_refuse(request, ticket, error, timer_note=note)
        messages.success(request, f"Timer stopped: saved {selectors.hours_short(entry.hours)} h.")
        return self._back(ticket, "time")

    def timer_cancel_view(self, request: HttpRequest, ticket_id: int) -> HttpResponse:
        ticket = self._ticket_for(request, ticket_id, PERM_TIMER)
        try:
            services.timer_cancel(ticket=ticket, operator=request.user)
        except ValidationError as error:
            return self.workspace_refuse(request, ticket, error)
        messages.success(request, "Timer cancelled: nothing was logged.")
        return self._back(ticket, "time")


@admin.register(TimeEntry)
class TimeEntryAdmin(ReadOnlyAdmin):
    """A read-only list: entries are added, changed and deleted on their ticket's page, so
    closed months and buckets are respected."""

    list_display = [
        "id",
        "ticket",
        "subscription",
        "operator",
        "hours",
        "work_date",
        "billed",
        "no_charge",
    ]
    list_filter = ["work_date", "operator", "no_charge"]
    list_select_related = ["ticket", "subscription__package", "operator"]
    search_fields = ["ticket__subject", "note", "ticket__client__name"]
    date_hierarchy = "work_date"

    def get_queryset(self, request: HttpRequest):
        return selectors.time_entries_with_billed(super().get_queryset(request))

    @admin.display(description="billed at", ordering="billed_at")
    def billed(self, entry: TimeEntry) -> Any:
        return getattr(entry, "billed_at", None)  # read by get_queryset

    def get_urls(self):
        report = path(
            "report/",
            self.admin_site.admin_view(self.report_view),
            name="tickets_timeentry_report",
        )
        return [report, *super().get_urls()]

    def report_view(self, request: HttpRequest) -> HttpResponse:
        """Hours and entries per operator or per client over a range of work dates; the same
        rows as CSV with ``format=csv``. A bad range is a form error (400), never a 500."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = OperatorReportForm(request.GET, today=local_today())
        report = None
        if form.is_valid():
            report = selectors.operator_report(
                date_from=form.cleaned_data["from"],
                date_to=form.cleaned_data["to"],
                view=form.cleaned_data["view"],
            )
            if request.GET.get("format") == "csv":
                return self._report_csv(report)
        context = {
            **self.admin_site.each_context(request),
            "title": "Operator report",
            "opts": self.opts,
            "form": form,
            "report": report,
            "presets": self._report_presets(),
        }
        response = TemplateResponse(request, "admin/tickets/timeentry/report.html", context)
        response.status_code = 200 if report is not None else 400
        return response

    @staticmethod
    def _report_presets() -> list[tuple[str, str, str]]:
        """One-click ranges: (label, from, to)."""
        today = local_today()
        this_month = period_current()
        last_month = period_previous(this_month)
        return [
            ("This month", f"{this_month}", f"{today}"),
            ("Last month", f"{last_month}", f"{period_last_day(last_month)}"),
            ("Last 12 months", f"{period_add(this_month, -11)}", f"{today}"),
        ]

    @staticmethod
    def _report_csv(report: selectors.OperatorReport) -> HttpResponse:
        filename = f"operator-report-{report.view}-{report.date_from}-{report.date_to}.csv"
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        writer = csv.writer(response)
        writer.writerow([report.label, "Hours", "Entries"])
        for row in report.rows:
            writer.writerow(
                [spreadsheet_text(row.name), selectors.hours_short(row.hours), row.entries]
            )
        return response


@admin.register(TimeTimer)
class TimeTimerAdmin(ReadOnlyAdmin):
    """Read-only: timers are started and stopped on the ticket page."""

    list_display = ["ticket", "operator", "started_at"]
    list_select_related = ["ticket", "operator"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """Read-only: the audit trail is append-only."""

    list_display = ["created_at", "action", "ticket", "subscription", "actor"]
    list_filter = ["action"]
    list_select_related = ["ticket", "subscription__package", "actor"]
    search_fields = ["ticket__subject"]
