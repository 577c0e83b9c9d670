from collections.abc import Callable
from importlib import import_module
from typing import Any

from django.apps import AppConfig
from django.dispatch import Signal


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        from billing import receivers
        from customers import signals as customers_signals
        from packages import signals as packages_signals
        from tickets.signals import time_entries_changed

        connections: list[tuple[Signal, Callable[..., Any]]] = [
            (time_entries_changed, receivers.usage_alerts_on_time_change),
            (packages_signals.subscription_created, receivers.bucket_on_subscription_created),
            (packages_signals.package_changed, receivers.audit_on_package_changed),
            (customers_signals.client_changed, receivers.audit_on_client_changed),
            (customers_signals.portal_login_changed, receivers.audit_on_portal_login_changed),
        ]
        for signal, receiver in connections:
            signal.connect(receiver, dispatch_uid=f"billing.{receiver.__name__}")
        # Registers the periods page's admin, kept apart from the items' (billing/admin.py).
        import_module("billing.admin_views")
        # Registers the tasks that services queue by name (supportbilling.queue.task_enqueue)
        # in every process, not only in a worker that discovered them.
        import_module("billing.tasks")
