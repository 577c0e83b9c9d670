from importlib import import_module

from django.apps import AppConfig


class WhmcsConfig(AppConfig):
    name = "whmcs"
    verbose_name = "WHMCS"

    def ready(self) -> None:
        from billing.admin_views import period_lines_register
        from whmcs.periods import push_lines

        # Registers the push task that the admin queues by name in every process.
        import_module("whmcs.tasks")
        # The month's failed and unknown pushes on billing's periods page.
        period_lines_register(push_lines)
