"""The WHMCS connector's records: which WHMCS client each client is, and each item's push
(docs/whmcs.md)."""

from django.db import models

from billing.models import BillableItem
from customers.models import Client


class WhmcsClient(models.Model):
    client = models.OneToOneField(Client, on_delete=models.CASCADE, related_name="whmcs_link")
    whmcs_client_id = models.PositiveIntegerField(
        "WHMCS client id", unique=True, help_text="The client's id in WHMCS (clientid)."
    )

    class Meta:
        verbose_name = "WHMCS client"
        ordering = ["client__name"]

    def __str__(self) -> str:
        return f"{self.client} = WHMCS #{self.whmcs_client_id}"


class PushStatus(models.TextChoices):
    SENDING = "sending", "Sending"
    PUSHED = "pushed", "Pushed"
    FAILED = "failed", "Failed (not in WHMCS; pushed again by the next run)"
    UNKNOWN = "unknown", "Outcome unknown (check WHMCS before pushing again)"


class WhmcsPush(models.Model):
    """One item's way into WHMCS. At most one per item: its ``billable_id`` is WHMCS's."""

    item = models.OneToOneField(BillableItem, on_delete=models.PROTECT, related_name="whmcs_push")
    status = models.CharField(max_length=16, choices=PushStatus.choices)
    billable_id = models.PositiveIntegerField("WHMCS billable id", null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    pushed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "WHMCS push"
        ordering = ["-pk"]

    def __str__(self) -> str:
        return f"item {self.item_id}: {self.status}"
