"""What a session sent, written in its own folder the moment WhatsApp acknowledged it.

WhatsApp does not let the sender choose a message id, so after a crash nobody can ask WhatsApp whether
a document went out. The session process can: before a resend, the dispatcher asks (`lookup_sent`) by
its own message id (`ref`). What remains possible is a crash after WhatsApp received the document but
before the acknowledgement was written here.
"""

import json
import os
from pathlib import Path

from django.conf import settings


class SentJournal:
    def __init__(self, path: Path, keep: int | None = None):
        """Remembers `keep` entries (SENT_JOURNAL_KEEP), up to twice as many in memory and on disk between
        compactions."""
        self.path = path
        self.keep = settings.SENT_JOURNAL_KEEP if keep is None else keep
        self.entries: dict[str, dict] = {}
        self._lines = 0
        self._fd: int | None = None
        if path.exists():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    entry = json.loads(line)
                    self.entries[entry["ref"]] = {"wa_message_id": entry["wa_message_id"], "timestamp": entry.get("timestamp")}
                    self._lines += 1
                except (ValueError, KeyError, TypeError):
                    continue  # a torn last line from a crash mid-write
            self._trim()

    def record(self, ref: str, wa_message_id: str, timestamp: float | None) -> None:
        line = json.dumps({"ref": ref, "wa_message_id": wa_message_id, "timestamp": timestamp}) + "\n"
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.write(self._fd, line.encode())
        os.fsync(self._fd)
        self.entries[ref] = {"wa_message_id": wa_message_id, "timestamp": timestamp}
        self._lines += 1
        if self._lines > 2 * self.keep:
            self._compact()

    def lookup(self, refs: list[str]) -> dict[str, dict]:
        return {ref: self.entries[ref] for ref in refs if ref in self.entries}

    def _trim(self) -> None:
        while len(self.entries) > self.keep:
            self.entries.pop(next(iter(self.entries)))

    def _compact(self) -> None:
        self._trim()
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for ref, e in self.entries.items():
                f.write(json.dumps({"ref": ref, **e}) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        if self._fd is not None:  # it points at the replaced file
            os.close(self._fd)
            self._fd = None
        self._lines = len(self.entries)
