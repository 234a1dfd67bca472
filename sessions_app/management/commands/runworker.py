"""`manage.py runworker`: the WhatsApp sessions, one process each, under the supervisor.

Production runs it beside the web processes (`manage.py serve --no-worker`, daphne or other ASGI
servers) with REDIS_URL set, so its events reach their WebSockets. SIGTERM or SIGINT stops every
session process cleanly before it exits. Several workers (on one host or many, sharing Postgres and
Redis) share the sessions by leases (sessions_app.session_leases); `--capacity` caps this one's share.
"""

import asyncio
import signal
import sys

from django.core.management.base import BaseCommand

from core import gc_tuning, stack_dump
from sessions_app.startup import StartupError, prepare_service


class Command(BaseCommand):
    help = "Run the WhatsApp session processes (the supervisor)."

    def add_arguments(self, parser):
        parser.add_argument("--capacity", type=int, default=None,
                            help="run at most this many sessions (default: WORKER_CAPACITY; 0: no limit)")

    def handle(self, *args, **options):
        from sessions_app.worker import build_supervisor

        try:
            prepare_service()
        except StartupError as exc:
            self.stderr.write(self.style.ERROR(f"Cannot start: {exc}"))
            sys.exit(2)
        if options["capacity"] is not None and options["capacity"] < 0:
            self.stderr.write(self.style.ERROR("Cannot start: --capacity must be 0 (no limit) or more"))
            sys.exit(2)
        asyncio.run(self._run(build_supervisor(capacity=options["capacity"])))

    async def _run(self, supervisor) -> None:
        loop = asyncio.get_running_loop()
        stack_dump.install(loop)
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, lambda: loop.create_task(supervisor.stop()))
        await supervisor.start()
        gc_tuning.settle(loop)
        await supervisor.wait()
