"""`manage.py restore_sessions ARCHIVE [--session ID ...]`: verify an archive of backup_sessions and
put its sessions back (sessions_app.restore); refuses while a worker runs any of them."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from sessions_app.ids import InvalidSessionId
from sessions_app.restore import RestoreError, restore


class Command(BaseCommand):
    help = "Restore WhatsApp sessions from an archive of backup_sessions (checksums verified first)."

    def add_arguments(self, parser):
        parser.add_argument("archive")
        parser.add_argument("--session", action="append", dest="sessions", default=None,
                            help="restore only this session (repeatable)")

    def handle(self, *args, archive, sessions, **options):
        path = Path(archive)
        if not path.is_file():
            raise CommandError(f"{archive}: no such file")
        try:
            restored = restore(path, only=sessions, progress=self.stdout.write)
        except (RestoreError, InvalidSessionId) as exc:
            raise CommandError(f"restore refused: {exc}") from None
        self.stdout.write(self.style.SUCCESS(f"Restored {len(restored)} sessions: {', '.join(restored) or '-'}"))
