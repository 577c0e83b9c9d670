"""Forms of the portal: they parse what the client typed; the services decide."""

from decimal import Decimal
from typing import cast

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat
from django.utils.functional import lazy

from billing.selectors.portal import client_subscriptions_to_choose
from packages.models import Subscription
from tickets.forms import MultipleFileField
from tickets.hours import hours_parse
from tickets.models import (
    HOURS_STEP,
    MESSAGE_BODY_MAX_LENGTH,
    MESSAGE_BODY_TOO_LONG,
    TicketStatus,
)

# A month has at most 744 hours; anything above is a typo, not a question.
CALCULATOR_MAX_HOURS = Decimal("744")


class ExtraHoursForm(forms.Form):
    extra = forms.CharField(
        label="Extra hours this month",
        required=False,
        max_length=20,
        help_text="For example 2.5, 2:30 or 150m.",
    )

    def clean_extra(self) -> Decimal:
        text = self.cleaned_data["extra"].strip()
        if not text:
            return Decimal("0.00")
        hours = hours_parse(text)
        if hours < 0:
            raise ValidationError("Enter zero or more hours.")
        if hours > CALCULATOR_MAX_HOURS:
            raise ValidationError("A month has at most 744 hours.")
        if hours % HOURS_STEP:
            raise ValidationError("Time is billed in quarter hours: enter 0.25, 0.5, 1.75 …")
        return hours.quantize(Decimal("0.01"))


# Lazy: the limit is read from the settings when the page is drawn.
ATTACHMENTS_HELP = lazy(
    lambda: (
        f"Optional; at most {filesizeformat(settings.ATTACHMENT_MAX_BYTES)} each,"
        " no programs or web pages."
    ),
    str,
)()


class SubscriptionChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Subscription) -> str:
        return f"{obj.package.name} (since {obj.start_date:%Y-%m-%d})"


class TicketCreateForm(forms.Form):
    subject = forms.CharField(max_length=200)
    body = forms.CharField(
        label="What do you need?",
        widget=forms.Textarea(attrs={"rows": 6}),
        max_length=MESSAGE_BODY_MAX_LENGTH,
        error_messages={"max_length": MESSAGE_BODY_TOO_LONG},
    )
    subscription = SubscriptionChoiceField(
        queryset=Subscription.objects.none(),
        required=False,
        empty_label="None",
        label="Support package",
        help_text="The package the time on this ticket is booked to.",
    )
    attachments = MultipleFileField(label="Files", help_text=ATTACHMENTS_HELP)

    def __init__(self, *args, client_id: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        field = cast(SubscriptionChoiceField, self.fields["subscription"])
        field.queryset = client_subscriptions_to_choose(client_id=client_id)


class ReplyForm(forms.Form):
    body = forms.CharField(
        label="Your reply",
        widget=forms.Textarea(attrs={"rows": 5}),
        max_length=MESSAGE_BODY_MAX_LENGTH,
        error_messages={"max_length": MESSAGE_BODY_TOO_LONG},
    )
    attachments = MultipleFileField(label="Files", help_text=ATTACHMENTS_HELP)


TICKET_FILTERS = [
    ("active", "Not closed"),
    ("", "All"),
    *TicketStatus.choices,
]


class TicketFilterForm(forms.Form):
    status = forms.ChoiceField(choices=TICKET_FILTERS, required=False, label="Status")


class DisputeForm(forms.Form):
    """One time entry or one billable item (by id), and the reason."""

    time_entry = forms.IntegerField(required=False, min_value=1)
    item = forms.IntegerField(required=False, min_value=1)
    reason = forms.CharField(
        max_length=2000,
        error_messages={
            "required": "Give the reason for the dispute.",
            "max_length": "Keep the reason under 2000 characters.",
        },
    )

    def clean(self):
        data = super().clean()
        if not self.errors and (data.get("time_entry") is None) == (data.get("item") is None):
            raise forms.ValidationError("Choose one time entry or one billable item to dispute.")
        return data


class OverageApproveForm(forms.Form):
    """Extra hours the client approves for the month; the service checks the number."""

    hours = forms.CharField(label="Extra hours to approve", max_length=20)


class OverageCapForm(forms.Form):
    """The client's own monthly cap on extra hours; empty clears it."""

    cap_hours = forms.CharField(label="Your monthly cap (hours)", max_length=20, required=False)
