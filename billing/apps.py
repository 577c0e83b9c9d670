from importlib import import_module

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
        # Registers the tasks that services queue by name (supportbilling.queue.task_enqueue)
        # in every process, not only in a worker that discovered them.
        import_module("billing.tasks")
