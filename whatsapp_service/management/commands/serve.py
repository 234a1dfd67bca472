"""`manage.py serve`: the service's HTTP and WebSocket server (uvicorn with httptools, each answer in one
write, and uvloop)."""

import logging
import sys

from django.conf import settings
from django.core.management.base import BaseCommand

from sessions_app.startup import StartupError, prepare_service


class Command(BaseCommand):
    help = "Serve the API, the admin and the WebSockets on PORT."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="0.0.0.0")
        parser.add_argument("--port", type=int, default=None, help="default: PORT (3000)")
        parser.add_argument(
            "--workers",
            type=int,
            default=1,
            help="web processes; more than one needs REDIS_URL so events reach every socket",
        )
        parser.add_argument(
            "--no-worker",
            action="store_true",
            help="do not run the WhatsApp sessions in this process (production: `manage.py runworker` does)",
        )

    def handle(self, *args, host, port, workers, no_worker, **options):
        import os

        import uvicorn

        from whatsapp_service.http_protocol import OneWriteHttpToolsProtocol

        if no_worker or workers > 1:
            os.environ["EMBEDDED_WORKER"] = "false"  # read again by each web process
            settings.EMBEDDED_WORKER = False

        try:
            prepare_service()
        except StartupError as exc:
            self.stderr.write(self.style.ERROR(f"Cannot start: {exc}"))
            sys.exit(2)
        if workers > 1 and not settings.REDIS_URL:
            self.stderr.write(self.style.ERROR("Cannot start: --workers > 1 needs REDIS_URL."))
            sys.exit(2)
        if settings.HTTP_KEEP_ALIVE_SECONDS < 1:
            self.stderr.write(self.style.ERROR("Cannot start: HTTP_KEEP_ALIVE_SECONDS must be 1 or more."))
            sys.exit(2)
        port = port or settings.PORT
        logging.getLogger(__name__).info(
            "Serving on http://%s:%s/ (API docs at /api/docs/, admin at /admin/)", host, port
        )
        uvicorn.run(
            "whatsapp_service.asgi:application",
            host=host,
            port=port,
            workers=workers,
            loop="uvloop",
            http=OneWriteHttpToolsProtocol,  # httptools, each answer in one write
            ws="websockets-sansio",
            lifespan="on",
            log_level="warning",
            log_config=None,  # uvicorn's lines go through the service's logging (LOG_FORMAT)
            server_header=False,
            timeout_keep_alive=settings.HTTP_KEEP_ALIVE_SECONDS,
            # Status and QR events are a few hundred bytes: compressing them saves nothing, and each
            # socket's compressor holds tens of KB until the socket is collected.
            ws_per_message_deflate=False,
        )
