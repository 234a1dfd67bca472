from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

_deliverers: dict[int, object] = {}


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = _("Webhooks")

    def ready(self) -> None:
        from sessions_app import signals

        signals.session_status_recorded.connect(_session_status_recorded, dispatch_uid="webhooks.session_status")
        signals.supervisor_started.connect(_start_deliverer, dispatch_uid="webhooks.deliverer.start")
        signals.supervisor_stopping.connect(_stop_deliverer, dispatch_uid="webhooks.deliverer.stop")


def _session_status_recorded(sender, session_id: str, status: str, reason: str | None, phone: str,
                             webhook_urls: list, **kwargs) -> None:
    from .events import session_status_changed

    session_status_changed(session_id, status, reason, phone, webhook_urls)


def _start_deliverer(sender, supervisor, **kwargs) -> None:
    """The worker runs the deliverer as its child process; without a secret no event is ever written."""
    from .events import enabled
    from .process import DelivererProcess

    if not enabled():
        return
    deliverer = DelivererProcess()
    _deliverers[id(supervisor)] = deliverer
    deliverer.start()


def _stop_deliverer(sender, supervisor, **kwargs):
    from django.conf import settings

    deliverer = _deliverers.pop(id(supervisor), None)
    if deliverer is None:
        return None
    return deliverer.stop(settings.WEBHOOK_TIMEOUT_SECONDS + 3)
