from django.apps import AppConfig


class ClientareaConfig(AppConfig):
    name = "clientarea"
    verbose_name = "Client portal"
