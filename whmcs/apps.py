from importlib import import_module

from django.apps import AppConfig


class WhmcsConfig(AppConfig):
    name = "whmcs"
    verbose_name = "WHMCS"

    def ready(self) -> None:
        # Registers the push task that the admin queues by name in every process.
        import_module("whmcs.tasks")
