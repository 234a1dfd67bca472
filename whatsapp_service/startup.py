"""What must hold before the service takes traffic. Every entry point calls prepare_service()."""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class StartupError(ImproperlyConfigured):
    pass


def require_token() -> None:
    if not settings.API_STATIC_TOKEN:
        raise StartupError(
            "API_STATIC_TOKEN is not set: the service refuses to start without it. "
            "Set it in the environment or in .env (`make run` writes a random one)."
        )
    if len(settings.API_STATIC_TOKEN) < 16:
        raise StartupError("API_STATIC_TOKEN is too short: use at least 16 characters.")
    from .rate_limit import parse_rate

    try:
        parse_rate(settings.API_RATE_LIMIT)
    except ValueError as exc:
        raise StartupError(str(exc)) from None


def prepare_service() -> None:
    """Token present, sessions.config.json valid and mirrored into the database."""
    from sessions_app.config_file import ConfigError, load_and_mirror

    require_token()
    try:
        load_and_mirror()
    except ConfigError as exc:
        raise StartupError(str(exc)) from None
