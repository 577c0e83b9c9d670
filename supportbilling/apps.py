from django.apps import AppConfig
from django.db.backends.signals import connection_created


class SupportBillingConfig(AppConfig):
    """The project's own wiring, outside any app of the product: the database's cursors."""

    name = "supportbilling"
    verbose_name = "Support by Time"

    def ready(self) -> None:
        from supportbilling.prepared import server_binding_cursors_use

        connection_created.connect(
            server_binding_cursors_use, dispatch_uid="supportbilling.server_binding_cursors"
        )
