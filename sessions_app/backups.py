"""Backups of the sessions folder (every session's WhatsApp credentials) and sessions.config.json.

One archive per run, `sessions-backup-<UTC timestamp>.tar.gz` (mode 0600: it holds credentials), with
`manifest.json` listing every file with its size and sha256. SQLite files (whatsmeow's store) are
copied with SQLite's online backup API, a consistent snapshot even while a session process writes to
it; their -wal/-shm/-journal companions are part of that snapshot and are not copied. Other files
(the simulator's device file, the sent journal) are written atomically or append-only and are copied
as they are. Restoring: sessions_app.restore.
"""

import hashlib
import json
import os
import re
import shutil
import socket
import sqlite3
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone as dt_timezone
from pathlib import Path

from django.conf import settings

from .ids import InvalidSessionId, session_dir, validate_session_id

FORMAT = "whatsapp-sessions-backup/1"
MANIFEST = "manifest.json"
CONFIG_MEMBER = "sessions.config.json"
ARCHIVE_RE = re.compile(r"sessions-backup-\d{8}T\d{6}Z\.tar\.gz")
SQLITE_HEADER = b"SQLite format 3\x00"
# Part of a database's snapshot, or a half-written temporary file: never copied on their own.
SKIPPED_SUFFIXES = ("-wal", "-shm", "-journal", ".tmp", ".lock")

Progress = Callable[[str], None]


class BackupError(Exception):
    """The backup could not be made; the message says why."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    sessions: list[str]
    files: int
    size: int


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_sqlite(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(len(SQLITE_HEADER)) == SQLITE_HEADER


def copy_sqlite_online(source: Path, target: Path) -> None:
    """A consistent copy of a database that may be in use (SQLite's online backup API)."""
    # mode=rw, not ro: a WAL database without its -shm cannot be opened read-only. Nothing is written.
    src = sqlite3.connect(f"{Path(source).resolve().as_uri()}?mode=rw", uri=True, timeout=30)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
            (result,) = dst.execute("PRAGMA integrity_check").fetchone()
        finally:
            dst.close()
    finally:
        src.close()
    if result != "ok":
        raise BackupError(f"{source.name}: the copy fails SQLite's integrity check: {result}")


def _session_folders(progress: Progress) -> list[tuple[str, Path]]:
    base = Path(settings.SESSIONS_DIR)
    if not base.exists():
        return []
    found = []
    for entry in sorted(base.iterdir()):
        if not entry.is_dir() or entry.is_symlink():
            continue
        try:
            found.append((validate_session_id(entry.name), session_dir(entry.name)))
        except InvalidSessionId:
            if not entry.name.startswith("."):  # restore's own staging and set-aside folders
                progress(f"skipped {entry.name!r}: not a session id")
    return found


def _stage_session(session_id: str, folder: Path, staging: Path, progress: Progress) -> list[dict]:
    files = []
    for root, dirs, names in os.walk(folder, followlinks=False):
        dirs.sort()
        for name in sorted(names):
            source = Path(root) / name
            if source.is_symlink() or not source.is_file() or name.endswith(SKIPPED_SUFFIXES):
                continue
            relative = source.relative_to(folder).as_posix()
            member = f"sessions/{session_id}/{relative}"
            target = staging / member
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                sqlite = is_sqlite(source)
                if sqlite:
                    copy_sqlite_online(source, target)
                else:
                    shutil.copyfile(source, target)
            except FileNotFoundError:  # deleted meanwhile (a logout): not part of this backup
                continue
            except sqlite3.Error as exc:
                raise BackupError(f"{session_id}/{relative}: {exc}") from exc
            size = target.stat().st_size
            files.append({"path": member, "size": size, "sha256": sha256_of(target),
                          "kind": "sqlite" if sqlite else "file"})
            progress(f"  {session_id}/{relative}: {'online SQLite backup' if sqlite else 'copied'}, {size} bytes")
    return files


def _archive_name(output: Path) -> Path:
    while True:
        stamp = datetime.now(dt_timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        path = output / f"sessions-backup-{stamp}.tar.gz"
        if not path.exists():
            return path
        time.sleep(0.2)


def create_backup(output: Path, progress: Progress = lambda _text: None) -> BackupResult:
    output = Path(output)
    output.mkdir(mode=0o700, parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".backup-", dir=output))
    try:
        manifest_files: list[dict] = []
        config = Path(settings.SESSIONS_CONFIG)
        if config.exists():
            shutil.copyfile(config, staging / CONFIG_MEMBER)
            manifest_files.append({"path": CONFIG_MEMBER, "size": (staging / CONFIG_MEMBER).stat().st_size,
                                   "sha256": sha256_of(staging / CONFIG_MEMBER), "kind": "config"})
            progress(f"{CONFIG_MEMBER}: copied")
        sessions = []
        folders = _session_folders(progress)
        for number, (session_id, folder) in enumerate(folders, start=1):
            progress(f"[{number}/{len(folders)}] session {session_id}")
            manifest_files.extend(_stage_session(session_id, folder, staging, progress))
            sessions.append(session_id)
        manifest = {
            "format": FORMAT,
            "createdAt": datetime.now(dt_timezone.utc).isoformat(),
            "host": socket.gethostname(),
            "backend": settings.WHATSAPP_BACKEND,
            "sessions": sessions,
            "files": manifest_files,
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        path = _archive_name(output)
        partial = output / f".{path.name}.partial"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w:gz") as tar:
                for member in [MANIFEST] + [f["path"] for f in manifest_files]:
                    info = tar.gettarinfo(staging / member, arcname=member)
                    info.uid = info.gid = 0
                    info.uname = info.gname = ""
                    info.mode = 0o600
                    with open(staging / member, "rb") as f:
                        tar.addfile(info, f)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(partial, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    size = path.stat().st_size
    return BackupResult(path, sessions, len(manifest_files), size)


def prune(output: Path, keep: int) -> list[Path]:
    """Delete all but the `keep` newest archives of this kind in `output` (names sort by time)."""
    if keep < 1:
        raise BackupError("--keep must be at least 1")
    archives = sorted(p for p in Path(output).iterdir() if ARCHIVE_RE.fullmatch(p.name) and p.is_file())
    removed = archives[:-keep]
    for path in removed:
        path.unlink()
    return removed
