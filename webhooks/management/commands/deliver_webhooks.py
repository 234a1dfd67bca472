"""`manage.py deliver_webhooks`: post the outbox's status webhooks until SIGTERM.

The worker (`serve` with its embedded worker, or `runworker`) starts this as its child when
WEBHOOK_SECRET is set, nudges it through a pipe whenever it commits events, and restarts it if it dies
(webhooks.process). It can also run on its own; it then finds new events by polling.
"""

import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Deliver status webhooks from the outbox (normally started by the worker)."

    def add_arguments(self, parser):
        parser.add_argument("--nudges-fd", type=int, default=None,
                            help="a pipe whose every byte means 'look now'; its end of file means 'stop'")
        parser.add_argument("--nice", type=int, default=0, help="lower this process's CPU priority by this much")

    def handle(self, *args, nudges_fd=None, nice=0, **options):
        from sessions_app.startup import StartupError, require_webhook_secret
        from webhooks.delivery import Deliverer

        # On its own it is an entry point too: nothing to sign with is a clear stop, not a failing post.
        if not settings.WEBHOOK_SECRET.strip():
            raise CommandError("Cannot start: WEBHOOK_SECRET is not set: every webhook is signed with it.")
        try:
            require_webhook_secret()
        except StartupError as exc:
            raise CommandError(f"Cannot start: {exc}") from None
        if nice:
            os.nice(nice)  # sending comes first
        Deliverer().run(nudges_fd)
