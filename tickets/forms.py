"""Forms of the operator's workspace in the admin. They only read what was typed; every rule
(hours format and step, closed months, active subscriptions, buckets) is in the services,
whose refusals the admin shows next to the form, keeping the typed values."""

import datetime as dt
from typing import Any

from django import forms

from supportbilling.periods import period_of, period_previous
from tickets.models import (
    MESSAGE_BODY_MAX_LENGTH,
    MESSAGE_BODY_TOO_LONG,
    MessageKind,
    Ticket,
    TicketStatus,
)

DATE_INVALID = "Enter a date as YYYY-MM-DD, for example 2026-11-01."


class TicketAddForm(forms.ModelForm):
    """An operator opens a ticket with its first message (through ``ticket_create``)."""

    body = forms.CharField(
        label="First message",
        widget=forms.Textarea(attrs={"rows": 6}),
        max_length=MESSAGE_BODY_MAX_LENGTH,
        error_messages={"max_length": MESSAGE_BODY_TOO_LONG},
    )

    class Meta:
        model = Ticket
        fields = ["client", "subject", "priority"]


class TimeLogForm(forms.Form):
    # Text, not a number: ``1.25``, ``1:15`` and ``75m`` are all read by ``hours_clean``.
    hours = forms.CharField(max_length=20, required=False)
    # Empty means today; which dates are allowed is the service's rule.
    work_date = forms.DateField(required=False)
    note = forms.CharField(max_length=500, required=False)
    # Under the ``approve`` overage policy: keep time beyond the approved hours, pending the
    # client's approval (tickets.overage).
    pending_ok = forms.BooleanField(required=False)

    # The page shows the errors of these fields beside them (not in the messages at the top).
    errors_beside = ("hours", "work_date", "note")


class EntryChangeForm(forms.Form):
    hours = forms.CharField(max_length=20)
    work_date = forms.DateField()
    note = forms.CharField(max_length=500, required=False)

    errors_beside = ("hours", "work_date", "note")


# What staff write on the ticket page.
REPLY_KINDS = [
    (MessageKind.OPERATOR_REPLY, "Reply to the client"),
    (MessageKind.INTERNAL_NOTE, "Internal note"),
]


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one input; the list is checked by the services (size, kind)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput())
        kwargs.setdefault("required", False)
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[Any]:
        files = data if isinstance(data, list | tuple) else [data]
        return [super(MultipleFileField, self).clean(file, initial) for file in files if file]


class ReplyForm(forms.Form):
    """A reply or note, with the author's time on it when hours are typed (the same fields
    and rules as ``TimeLogForm``; empty hours: the reply only)."""

    kind = forms.ChoiceField(choices=REPLY_KINDS, initial=MessageKind.OPERATOR_REPLY)
    body = forms.CharField(
        label="Message",
        max_length=MESSAGE_BODY_MAX_LENGTH,
        error_messages={"required": "write something first.", "max_length": MESSAGE_BODY_TOO_LONG},
    )
    status_after = forms.ChoiceField(
        choices=[("", "Status as usual (reply: answered)"), *TicketStatus.choices],
        required=False,
    )
    hours = forms.CharField(max_length=20, required=False)
    work_date = forms.DateField(required=False)
    pending_ok = forms.BooleanField(required=False)
    attachments = MultipleFileField(label="Files")

    errors_beside = ("body", "hours", "work_date", "attachments")


class ReplyPreviewForm(forms.Form):
    """What the preview of a reply reads: the text being typed and its kind."""

    kind = forms.ChoiceField(choices=REPLY_KINDS)
    body = forms.CharField(
        max_length=MESSAGE_BODY_MAX_LENGTH,
        strip=False,
        error_messages={"required": "Nothing to preview yet.", "max_length": MESSAGE_BODY_TOO_LONG},
    )


class AssignForm(forms.Form):
    # Empty: nobody. Who may be assigned is the service's rule (an active operator).
    assignee = forms.IntegerField(required=False)


class SubscriptionChoiceForm(forms.Form):
    subscription = forms.IntegerField(error_messages={"required": "Choose a subscription."})


class ServiceAddForm(forms.Form):
    package = forms.IntegerField(error_messages={"required": "Choose a package."})


class OperatorReportForm(forms.Form):
    """The operator report's range and view, read from the query string (``?from=2026-10-01
    &to=2026-11-20&view=client``). Empty dates mean the start of last month and today."""

    view = forms.ChoiceField(
        choices=[("operator", "Per operator"), ("client", "Per client")], required=False
    )

    RANGE_DAYS_MAX = 3660  # ten years: enough for any report, bounded for the database

    def __init__(self, *args: Any, today: dt.date, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.today = today
        # "from" and "to" are the parameters people type; Python cannot name class fields so.
        self.fields["from"] = forms.DateField(
            label="From", required=False, error_messages={"invalid": DATE_INVALID}
        )
        self.fields["to"] = forms.DateField(
            label="To", required=False, error_messages={"invalid": DATE_INVALID}
        )
        self.order_fields(["from", "to", "view"])

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        last_month = period_previous(period_of(self.today))
        data["from"] = data.get("from") or last_month
        data["to"] = data.get("to") or self.today
        data["view"] = data.get("view") or "operator"
        if data["from"] > data["to"]:
            self.add_error("to", "The end date is before the start date.")
        elif (data["to"] - data["from"]).days > self.RANGE_DAYS_MAX:
            self.add_error("to", "Choose a range of at most ten years.")
        return data
