from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SimulatorConfig(AppConfig):
    """The simulated WhatsApp: its backend, the phone's actions and what it delivered, their endpoints.
    Installed only with its backend (settings.SIMULATOR_INSTALLED); sessions_app never imports it but
    by the backend's name (sessions_app.backends.backend_class)."""

    name = "simulator"
    verbose_name = _("Simulador de WhatsApp")
