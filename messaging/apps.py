import asyncio

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

_dispatchers: dict[int, object] = {}


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = _("Mensajes")

    def ready(self) -> None:
        from sessions_app import signals

        signals.supervisor_started.connect(_start_dispatcher, dispatch_uid="messaging.dispatcher.start")
        signals.supervisor_stopping.connect(_stop_dispatcher, dispatch_uid="messaging.dispatcher.stop")


def _start_dispatcher(sender, supervisor, **kwargs) -> None:
    """The dispatcher lives on the supervisor's loop, beside the session processes it sends through."""
    from .dispatcher import Dispatcher

    dispatcher = Dispatcher(supervisor)
    _dispatchers[id(supervisor)] = dispatcher
    asyncio.get_running_loop().create_task(dispatcher.start())


def _stop_dispatcher(sender, supervisor, **kwargs):
    """Returns the coroutine that stops it; the supervisor awaits it before stopping the sessions."""
    from django.conf import settings

    dispatcher = _dispatchers.pop(id(supervisor), None)
    if dispatcher is None:
        return None
    return dispatcher.stop(settings.DISPATCH_SHUTDOWN_GRACE_SECONDS)
