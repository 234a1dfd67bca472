"""sessions.config.json: reading it strictly, writing it atomically, mirroring it into the database."""

import fcntl
import json
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction

from .ids import InvalidSessionId, validate_session_id
from .models import WhatsAppSession
from .proxies import InvalidProxy, validate_proxy


class ConfigError(Exception):
    """sessions.config.json cannot be used; the message says which entry and why."""


@dataclass(frozen=True)
class SessionEntry:
    session_id: str
    description: str = ""
    webhook_urls: tuple[str, ...] = ()  # this session's own status webhook receivers
    # Its own proxy (sessions_app.proxies), "" for WHATSAPP_PROXY or none; may hold a password: not in repr.
    proxy: str = field(default="", repr=False)

    def as_json(self) -> dict:
        data = {"sessionId": self.session_id, "description": self.description}
        if self.webhook_urls:
            data["webhookUrls"] = list(self.webhook_urls)
        if self.proxy:
            data["proxy"] = self.proxy
        return data


def config_path() -> Path:
    return Path(settings.SESSIONS_CONFIG)


def parse_config(text: str, source: str = "sessions.config.json") -> list[SessionEntry]:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    if not isinstance(raw, list):
        raise ConfigError(f"{source}: expected a JSON list of sessions, got {type(raw).__name__}")
    entries: list[SessionEntry] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        where = f"{source}: entry {index}"
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: expected an object with \"sessionId\", got {type(item).__name__}")
        try:
            session_id = validate_session_id(item.get("sessionId"))
        except InvalidSessionId as exc:
            raise ConfigError(f"{where}: {exc}") from None
        description = item.get("description", "")
        if not isinstance(description, str):
            raise ConfigError(f"{where} ({session_id}): \"description\" must be a string")
        if "\x00" in description:
            raise ConfigError(f"{where} ({session_id}): \"description\" contains a NUL character")
        if session_id in seen:
            raise ConfigError(f"{where}: session id {session_id!r} appears twice")
        seen.add(session_id)
        urls = item.get("webhookUrls", [])
        if not isinstance(urls, list) or not all(_is_http_url(u) for u in urls):
            raise ConfigError(f"{where} ({session_id}): \"webhookUrls\" must be a list of http(s) URLs")
        try:
            proxy = validate_proxy(item.get("proxy", ""))
        except InvalidProxy as exc:
            raise ConfigError(f"{where} ({session_id}): \"proxy\" {exc}") from None
        entries.append(SessionEntry(session_id, description[:255], tuple(urls), proxy))
    return entries


def _is_http_url(value: object) -> bool:
    if not isinstance(value, str) or len(value) > 2000:
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def read_config(path: Path | None = None) -> list[SessionEntry]:
    path = path or config_path()
    if not path.exists():
        return []
    return parse_config(path.read_text(encoding="utf-8"), source=str(path))


@contextmanager
def _locked(path: Path):
    """An exclusive lock beside the file, held across read-modify-write, across processes."""
    lock_path = path.with_name(path.name + ".lock")
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write_atomically(path: Path, entries: list[SessionEntry]) -> None:
    data = json.dumps([e.as_json() for e in entries], ensure_ascii=False, indent=2) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def add_session_to_config(entry: SessionEntry, path: Path | None = None) -> bool:
    """Append an entry unless present. Returns True when the file changed."""
    path = path or config_path()
    validate_session_id(entry.session_id)
    with _locked(path):
        entries = read_config(path)
        if any(e.session_id == entry.session_id for e in entries):
            return False
        _write_atomically(path, entries + [entry])
        return True


def remove_session_from_config(session_id: str, path: Path | None = None) -> bool:
    path = path or config_path()
    with _locked(path):
        entries = read_config(path)
        kept = [e for e in entries if e.session_id != session_id]
        if len(kept) == len(entries):
            return False
        _write_atomically(path, kept)
        return True


@transaction.atomic
def mirror_config_to_db(entries: list[SessionEntry]) -> None:
    """Rows for every configured session; rows no longer configured are marked, never deleted
    (their messages keep their history)."""
    ids = [e.session_id for e in entries]
    existing = {s.session_id: s for s in WhatsAppSession.objects.filter(session_id__in=ids)}
    for entry in entries:
        row = existing.get(entry.session_id)
        if row is None:
            WhatsAppSession.objects.create(
                session_id=entry.session_id, description=entry.description, webhook_urls=list(entry.webhook_urls)
            )
        elif (row.description, row.webhook_urls, row.in_config) != (entry.description, list(entry.webhook_urls), True):
            row.description = entry.description
            row.webhook_urls = list(entry.webhook_urls)
            row.in_config = True
            row.save(update_fields=["description", "webhook_urls", "in_config", "updated_at"])
    WhatsAppSession.objects.exclude(session_id__in=ids).filter(in_config=True).update(in_config=False)


def load_and_mirror() -> list[SessionEntry]:
    entries = read_config()
    mirror_config_to_db(entries)
    return entries
