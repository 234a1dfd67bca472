from django.conf import settings
from django.core.checks import Error, register


@register()
def api_token_is_set(app_configs, **kwargs):
    if settings.API_STATIC_TOKEN:
        return []
    return [
        Error(
            "API_STATIC_TOKEN is not set: the service refuses to start without it.",
            hint="Set it in the environment or in .env (`make run` writes a random one).",
            id="whatsapp_service.E001",
        )
    ]
