"""The worker in parts: the pool of session processes (pool), this worker's session leases (leases),
the reconnect policy (policy, pure), the command inbox (inbox), the channel-layer publisher
(publisher), and the supervisor that puts them together on one loop. `build_supervisor()` is how
`manage.py runworker` and the embedded mode (whatsapp_service.asgi) both make one."""

import sys

from ..session_handle import CommandTimeout, SessionUnavailable
from .gateway import SessionGateway
from .supervisor import Supervisor

__all__ = ["CommandTimeout", "SessionGateway", "SessionUnavailable", "Supervisor", "build_supervisor"]


def build_supervisor(backend: str | None = None, print_qr: bool | None = None, capacity: int | None = None
                     ) -> Supervisor:
    """A worker from the settings: WHATSAPP_BACKEND, WORKER_CAPACITY (0: no limit) and PRINT_QR (unset:
    on a terminal or with DEBUG). An unknown backend fails here, not in every session process."""
    from django.conf import settings

    from ..backends import backend_class

    backend = backend or settings.WHATSAPP_BACKEND
    backend_class(backend)
    if print_qr is None:
        print_qr = settings.PRINT_QR
    if print_qr is None:
        print_qr = settings.DEBUG or sys.stdout.isatty()
    return Supervisor(backend, print_qr, settings.WORKER_CAPACITY if capacity is None else capacity)
