"""The form of a user's e-mail preferences, for the portal and the admin alike."""

from typing import Any

from django import forms

from customers.selectors import mail_kinds_for, notification_preference_of


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
        """The form of ``user``'s own preferences (bound to ``data`` when it was posted), with
        only the kinds of e-mail they can receive: a kind left out is left as it is."""
        preference = notification_preference_of(user)
        kinds = mail_kinds_for(user)
        form = cls(data or None, initial={kind: getattr(preference, kind) for kind in kinds})
        for name in list(form.fields):
            if name not in kinds:
                del form.fields[name]
        return form
