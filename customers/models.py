"""Clients (billing accounts) and the users who act for them in the portal."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models


def validate_currency(code: str) -> None:
    """Checked against CURRENCIES at run time, so a deployment can add one without a migration."""
    if code not in settings.CURRENCIES:
        raise ValidationError(
            "%(code)s is not one of the currencies in use (%(codes)s).",
            params={"code": code, "codes": ", ".join(settings.CURRENCIES)},
            code="currency",
        )


def validate_language(code: str) -> None:
    """One of Django's LANGUAGES (checked at run time, like the currency)."""
    if code and code not in dict(settings.LANGUAGES):
        raise ValidationError(
            "%(code)s is not a language code Django knows (e.g. en, de, fr).",
            params={"code": code},
            code="language",
        )


class Client(models.Model):
    name = models.CharField(max_length=200)
    email = models.EmailField(help_text="Billing contact.")
    # Every price, statement and billable item of the client is in this currency.
    currency = models.CharField(max_length=3, validators=[validate_currency])
    # The language of the client's statements (dates, numbers, money); empty: the site's.
    language = models.CharField(
        max_length=10,
        blank=True,
        default="",
        # Also in the database: rows written without the column (bulk loads, older code
        # during a deploy) get the site's language too.
        db_default="",
        validators=[validate_language],
        help_text="Statements are written in this language; empty: the site's (LANGUAGE_CODE).",
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["name"])]

    def __str__(self) -> str:
        return self.name


class ClientUser(models.Model):
    """A portal login of a client. A user acts for at most one client."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="client_membership"
    )
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="members")

    class Meta:
        verbose_name = "client user"

    def __str__(self) -> str:
        return f"{self.user} @ {self.client}"


class PasswordResetRequest(models.Model):
    """One request for a password-reset e-mail, counted against the e-mail address asked for
    and against the client address asking (``customers.services.password_reset_request_record``).
    Rows older than the counting window are deleted as new requests come in."""

    # SHA-256 of "email:<address>" or "ip:<address>": the counts need no readable address.
    key = models.CharField(max_length=64)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["key", "created_at"], name="passwordreset_key_time"),
            models.Index(fields=["created_at"], name="passwordreset_time"),
        ]

    def __str__(self) -> str:
        return f"Password reset request at {self.created_at:%Y-%m-%d %H:%M}"


class MailKind(models.TextChoices):
    """The kinds of e-mail a user can turn off (``customers.selectors.user_wants``)."""

    TICKET_MAIL = "ticket_mail", "Ticket e-mails"
    USAGE_ALERTS = "usage_alerts", "Usage alerts"
    MONTHLY_STATEMENTS = "monthly_statements", "Monthly statements"


class NotificationPreference(models.Model):
    """Which e-mails a user wants; a user without a row wants them all."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preference"
    )
    ticket_mail = models.BooleanField(
        "ticket e-mails",
        default=True,
        help_text="Replies, new tickets, closed and reopened tickets.",
    )
    usage_alerts = models.BooleanField(
        default=True, help_text="When a subscription reaches 80 % or 100 % of its hours."
    )
    monthly_statements = models.BooleanField(
        default=True, help_text="The statement PDF of each closed month, as an attachment."
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Mail preferences of {self.user}"
