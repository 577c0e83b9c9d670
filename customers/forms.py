"""The form of a user's e-mail preferences, for the portal and the admin alike."""

from typing import Any

from django import forms

from customers.selectors import notification_preference_of


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
    monthly_statements = forms.BooleanField(
        label="Monthly statements",
        required=False,
        help_text="The statement of each closed month as a PDF attachment.",
    )

    @classmethod
    def for_user(cls, user: Any, data: Any = None) -> "NotificationPreferenceForm":
        """The form of ``user``'s own preferences (bound to ``data`` when it was posted)."""
        preference = notification_preference_of(user)
        initial = {
            "ticket_mail": preference.ticket_mail,
            "usage_alerts": preference.usage_alerts,
            "monthly_statements": preference.monthly_statements,
        }
        return cls(data or None, initial=initial)
