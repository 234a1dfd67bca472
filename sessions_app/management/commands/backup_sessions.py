"""`manage.py backup_sessions [--output DIR] [--keep N]`: every session's credentials and
sessions.config.json into one timestamped archive with a manifest and checksums (sessions_app.backups).
Safe while the service runs."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from sessions_app.backups import BackupError, create_backup, prune


class Command(BaseCommand):
    help = "Back up the WhatsApp sessions' credentials and sessions.config.json into one archive."

    def add_arguments(self, parser):
        parser.add_argument("--output", default=None, help="folder for the archives (default: BACKUP_DIR, ./backups)")
        parser.add_argument("--keep", type=int, default=None, help="keep only the N newest archives in the folder")

    def handle(self, *args, output, keep, **options):
        if keep is not None and keep < 1:
            raise CommandError("--keep must be at least 1")
        output = Path(output or settings.BACKUP_DIR)
        try:
            result = create_backup(output, progress=self.stdout.write)
        except (BackupError, OSError) as exc:
            raise CommandError(f"backup failed: {exc}") from None
        self.stdout.write(self.style.SUCCESS(
            f"Backup written: {result.path} ({len(result.sessions)} sessions, {result.files} files, "
            f"{result.size} bytes)"
        ))
        if keep is not None:
            for path in prune(output, keep):
                self.stdout.write(f"removed old backup {path.name}")
