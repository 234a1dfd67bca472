"""`manage.py move_credentials --to postgres|files [SESSION_ID ...]`: move sessions' WhatsApp credentials
between their folder and their Postgres schema (sessions_app.credential_move); refuses running sessions."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from sessions_app.credential_move import MoveError, move_credentials
from sessions_app.credential_store import MODES


class Command(BaseCommand):
    help = ("Move WhatsApp credentials to Postgres (a schema per session) or to files (SESSIONS_DIR); "
            "each copy is verified before its source is removed.")

    def add_arguments(self, parser):
        parser.add_argument("--to", required=True, choices=MODES, help="the store to move the credentials to")
        parser.add_argument("session_ids", nargs="*", metavar="SESSION_ID",
                            help="the sessions to move (default: every session in the sessions config file)")

    def handle(self, *args, to, session_ids, **options):
        try:
            moved = move_credentials(session_ids or None, to, progress=self.stdout.write)
        except MoveError as exc:
            raise CommandError(f"{exc.code}: {exc}") from None
        self.stdout.write(self.style.SUCCESS(f"Moved {len(moved)} sessions to {to}: {', '.join(moved) or '-'}"))
        if moved and settings.CREDENTIALS_STORE != to:
            self.stdout.write(self.style.WARNING(
                f"CREDENTIALS_STORE is {settings.CREDENTIALS_STORE}: set CREDENTIALS_STORE={to} before starting "
                "the worker, or these sessions will ask to be linked again"))
