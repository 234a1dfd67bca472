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
    from core.rate_limit import parse_rate

    try:
        parse_rate(settings.API_RATE_LIMIT)
    except ValueError as exc:
        raise StartupError(str(exc)) from None


def require_webhook_secret() -> None:
    """Status webhooks are signed (webhooks.signing): receivers configured without a secret, or with one
    that is not a Standard Webhooks secret, would get events they cannot verify, so the service does not
    start. The message never repeats the secret."""
    from urllib.parse import urlsplit

    from sessions_app.models import WhatsAppSession
    from webhooks.signing import keys

    for url in settings.WEBHOOK_URLS:
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise StartupError(f"WEBHOOK_URLS: {parts.scheme or '?'}://{parts.hostname or '?'}... is not an http(s) URL.")
    how = ("Use whsec_ followed by 24 to 64 random bytes in base64, or two such secrets separated by a "
           "space while rotating (`make run` writes one into .env when webhook URLs are set).")
    if settings.WEBHOOK_SECRET.strip():
        try:
            keys(settings.WEBHOOK_SECRET)
        except ValueError as exc:
            raise StartupError(f"WEBHOOK_SECRET is not a Standard Webhooks secret: {exc}. {how}") from None
    elif settings.WEBHOOK_URLS or WhatsAppSession.objects.filter(in_config=True).exclude(webhook_urls=[]).exists():
        raise StartupError(f"Webhook URLs are configured but WEBHOOK_SECRET is not set: every webhook is signed with it. {how}")


def require_bounds() -> None:
    """A session's journal of sends must remember at least one: it is what answers "was this sent?" after a
    crash (a count under 1 would also leave nothing for its trimming to keep)."""
    if settings.SENT_JOURNAL_KEEP < 1:
        raise StartupError(f"SENT_JOURNAL_KEEP={settings.SENT_JOURNAL_KEEP}: use 1 or more.")


def require_valid_proxy() -> None:
    """WHATSAPP_PROXY is checked like a config entry's `proxy`; the message never repeats it (a password)."""
    from sessions_app.proxies import InvalidProxy, validate_proxy

    try:
        validate_proxy(settings.WHATSAPP_PROXY)
    except InvalidProxy as exc:
        raise StartupError(f"WHATSAPP_PROXY {exc}.") from None


def prepare_service() -> None:
    """Token present, bounds sane, sessions.config.json valid and mirrored into the database, webhooks signable."""
    from sessions_app.config_file import ConfigError, load_and_mirror

    require_token()
    require_bounds()
    require_valid_proxy()
    try:
        load_and_mirror()
    except ConfigError as exc:
        raise StartupError(str(exc)) from None
    require_webhook_secret()
