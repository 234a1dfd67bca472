"""Restoring a backup of sessions_app.backups: verify every checksum first, then put each session's
folder in place in one rename, never under a session that is running.

A member not in the manifest, a path that leaves its folder, a link or a size or checksum that differs
stops the restore before anything is written. A session folder that exists is not deleted: it is set
aside as `SESSIONS_DIR/.replaced-<id>-<timestamp>` (the operator removes it once happy).
"""

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from datetime import datetime, timezone as dt_timezone
from pathlib import Path, PurePosixPath

from django.conf import settings

from .backups import CONFIG_MEMBER, FORMAT, MANIFEST
from .config_file import SessionEntry, add_session_to_config, load_and_mirror, parse_config, read_config
from .ids import InvalidSessionId, session_dir, validate_session_id
from .models import SessionStatus, WhatsAppSession
from .session_state import LIVE_STATUSES
from .worker_heartbeat import worker_alive

Progress = Callable[[str], None]
# A session in one of these may have a process holding its files (disconnected: it is reconnecting).
RUNNING_STATUSES = [*LIVE_STATUSES, SessionStatus.DISCONNECTED]


class RestoreError(Exception):
    """The archive was refused or could not be restored; the message says why."""


def _read_manifest(tar: tarfile.TarFile) -> dict:
    try:
        member = tar.getmember(MANIFEST)
        manifest = json.loads(tar.extractfile(member).read())
    except (KeyError, AttributeError, ValueError) as exc:
        raise RestoreError(f"not a sessions backup: no readable {MANIFEST}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise RestoreError(f"unknown backup format {manifest.get('format') if isinstance(manifest, dict) else None!r}")
    return manifest


def _session_of(path: str) -> tuple[str, str] | None:
    """('tienda_lima', 'whatsmeow.sqlite3') for sessions/tienda_lima/whatsmeow.sqlite3; None for the config.
    Raises RestoreError for anything else."""
    if path == CONFIG_MEMBER:
        return None
    parts = PurePosixPath(path).parts
    if len(parts) < 3 or parts[0] != "sessions" or any(p in ("", ".", "..") for p in parts) or path.startswith("/"):
        raise RestoreError(f"unexpected path in the archive: {path!r}")
    try:
        validate_session_id(parts[1])
    except InvalidSessionId as exc:
        raise RestoreError(str(exc)) from None
    return parts[1], "/".join(parts[2:])


def verify_and_extract(archive: Path, staging: Path, only: set[str] | None) -> tuple[dict, dict[str, int]]:
    """Check every member against the manifest while writing the wanted ones under `staging`.
    Returns the manifest and the number of files per session."""
    try:
        tar = tarfile.open(archive, "r:gz")
    except (OSError, tarfile.TarError) as exc:
        raise RestoreError(f"cannot read {archive}: {exc}") from None
    with tar:
        manifest = _read_manifest(tar)
        expected = {f["path"]: f for f in manifest.get("files", [])}
        seen: set[str] = set()
        counts: dict[str, int] = {}
        for member in tar.getmembers():
            if member.name == MANIFEST:
                continue
            if member.name not in expected:
                raise RestoreError(f"{member.name!r} is in the archive but not in its manifest")
            if not member.isreg():
                raise RestoreError(f"{member.name!r} is not a regular file")
            owner = _session_of(member.name)
            wanted = owner is None or only is None or owner[0] in only
            digest, size = hashlib.sha256(), 0
            target = staging / member.name
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            source = tar.extractfile(member)
            with open(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
                for block in iter(lambda: source.read(1 << 20), b""):
                    digest.update(block)
                    size += len(block)
                    if wanted:
                        out.write(block)
            if not wanted:
                target.unlink()
            entry = expected[member.name]
            if size != entry.get("size") or digest.hexdigest() != entry.get("sha256"):
                raise RestoreError(f"checksum mismatch for {member.name}: the archive is damaged or altered")
            seen.add(member.name)
            if owner is not None and wanted:
                counts[owner[0]] = counts.get(owner[0], 0) + 1
        missing = sorted(set(expected) - seen)
        if missing:
            raise RestoreError(f"files listed in the manifest are missing from the archive: {missing[:5]}")
    return manifest, counts


def running_sessions(session_ids: list[str]) -> list[str]:
    """Those a worker may be running now: a worker beats and the session's status says a process has it."""
    if not session_ids or not worker_alive():
        return []
    return sorted(
        WhatsAppSession.objects.filter(session_id__in=session_ids, status__in=RUNNING_STATUSES).values_list(
            "session_id", flat=True
        )
    )


def restore(archive: Path, only: list[str] | None = None, progress: Progress = lambda _text: None) -> list[str]:
    """Restore the archive's sessions (or `only` those); returns their ids."""
    base = Path(settings.SESSIONS_DIR)
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    wanted = {validate_session_id(s) for s in only} if only else None
    staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=base))
    try:
        manifest, counts = verify_and_extract(Path(archive), staging, wanted)
        progress(f"checksums verified: {len(manifest.get('files', []))} files")
        listed = [s for s in manifest.get("sessions", []) if wanted is None or s in wanted]
        if wanted is not None and wanted - set(manifest.get("sessions", [])):
            raise RestoreError(f"not in this backup: {sorted(wanted - set(manifest.get('sessions', [])))}")
        busy = running_sessions(listed)
        if busy:
            raise RestoreError(
                f"these sessions are running: {', '.join(busy)}. Stop the worker (or restore the others "
                "with --session) and try again; nothing was changed"
            )
        stamp = datetime.now(dt_timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        for session_id in listed:
            target = session_dir(session_id)
            if target.exists():
                aside = base / f".replaced-{session_id}-{stamp}"
                target.rename(aside)
                progress(f"{session_id}: the existing folder is kept as {aside.name}")
            restored = staging / "sessions" / session_id
            if restored.exists():
                restored.rename(target)
            else:
                target.mkdir(mode=0o700)
            os.chmod(target, 0o700)
            progress(f"{session_id}: restored ({counts.get(session_id, 0)} files)")
        _merge_config(staging / CONFIG_MEMBER, listed, progress)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return listed


def _merge_config(archived: Path, session_ids: list[str], progress: Progress) -> None:
    """Restored sessions the current sessions.config.json lacks are added (with their description)."""
    described = {}
    if archived.exists():
        described = {e.session_id: e for e in parse_config(archived.read_text(encoding="utf-8"), CONFIG_MEMBER)}
    present = {e.session_id for e in read_config()}
    for session_id in session_ids:
        if session_id not in present:
            add_session_to_config(described.get(session_id, SessionEntry(session_id)))
            progress(f"{session_id}: added to {Path(settings.SESSIONS_CONFIG).name}")
    load_and_mirror()
