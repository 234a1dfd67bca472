from django.apps import AppConfig


class CoreConfig(AppConfig):
    """What every app shares: the token check, the error body, logs, phones, limits. Imports no app."""

    name = "core"
    verbose_name = "Core"
