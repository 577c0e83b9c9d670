"""The form of a user's e-mail preferences, for the portal and the admin alike."""

from django import forms


class NotificationPreferenceForm(forms.Form):
    ticket_mail = forms.BooleanField(
        label="Ticket e-mails",
        required=False,
        help_text="Replies to tickets, new tickets, tickets closed and reopened.",
    )
    usage_alerts = forms.BooleanField(
        label="Usage alerts",
        required=False,
        help_text="When a subscription reaches 80 % or 100 % of its included hours.",
    )
