from django.apps import AppConfig


class WhatsAppServiceConfig(AppConfig):
    name = "whatsapp_service"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
