"""The ASGI application: POST /api/send-pdf on its fast path, everything else through Channels/Django."""

import asyncio
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "whatsapp_service.settings")

import django  # noqa: E402

django.setup()

from asgiref.sync import sync_to_async  # noqa: E402
from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402

from core import gc_tuning, http_guard, log_format, rate_limit, stack_dump  # noqa: E402
from messaging import asgi_send  # noqa: E402
from messaging.queue_writer import shutdown_writer  # noqa: E402
from sessions_app.routing import websocket_urlpatterns  # noqa: E402
from sessions_app.startup import prepare_service, require_token  # noqa: E402

require_token()  # whatever server imports this refuses to start without a token

django_app = get_asgi_application()
# The session cookie gives the admin's linking page its staff user; the consumer checks token or staff
# (and the Origin for cookies) itself, since token clients need not send an Origin.
websocket_app = AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
# Static files (admin, linking page) are served by the service itself: one process, nothing in front.
router = ProtocolTypeRouter({"http": ASGIStaticFilesHandler(django_app), "websocket": websocket_app})


async def application(scope, receive, send):
    if scope["type"] == "http":
        if rate_limit.limiter() is not None and await http_guard.rate_limited(scope, send):
            return
        if asgi_send.wants(scope):  # its body limit is its own, checked as it reads
            return await asgi_send.handle(scope, receive, send)
        return await http_guard.guarded(router, scope, receive, send)
    if scope["type"] == "lifespan":
        return await _lifespan(receive, send)
    return await router(scope, receive, send)


async def _lifespan(receive, send):
    supervisor = None
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            stack_dump.install(asyncio.get_running_loop())
            try:
                await sync_to_async(prepare_service)()
                if settings.EMBEDDED_WORKER:
                    # Embedded mode: the sessions run under this server's loop, where the in-memory
                    # channel layer reaches the sockets.
                    from sessions_app.worker import build_supervisor

                    supervisor = build_supervisor()
                    await supervisor.start()
            except Exception as exc:
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            gc_tuning.settle(asyncio.get_running_loop())
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if supervisor is not None:
                await supervisor.stop()
            await sync_to_async(shutdown_writer, thread_sensitive=False)()
            # uvicorn ends by re-raising the signal it stopped for, which skips atexit: the log lines
            # still queued for the writer thread are written now.
            await sync_to_async(log_format.flush, thread_sensitive=False)()
            await send({"type": "lifespan.shutdown.complete"})
            return

