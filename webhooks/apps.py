from importlib import import_module

from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from billing import signals as billing_signals
        from webhooks import receivers

        billing_signals.period_closed.connect(
            receivers.on_period_closed, dispatch_uid="webhooks.on_period_closed"
        )
        billing_signals.items_created.connect(
            receivers.on_items_created, dispatch_uid="webhooks.on_items_created"
        )
        billing_signals.items_status_changed.connect(
            receivers.on_items_status_changed, dispatch_uid="webhooks.on_items_status_changed"
        )
        # Registers the delivery task that services queue by name in every process.
        import_module("webhooks.tasks")
