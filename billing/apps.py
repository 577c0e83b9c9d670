from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        from billing import receivers
        from tickets.signals import time_entries_changed

        time_entries_changed.connect(
            receivers.usage_alerts_on_time_change,
            dispatch_uid="billing.usage_alerts_on_time_change",
        )
