"""Where a session's WhatsApp credentials live, and how they are deleted.

CREDENTIALS_STORE (settings) says which store: `files`, the session's folder (SESSIONS_DIR/<id>/,
whatsmeow's SQLite file and the simulator's device file), or `postgres`, one schema per session in the
default database (whatsmeow's tables and the simulator's `simulator_device`), so that any worker can
resume any session. One schema per session keeps sessions apart: whatsmeow resumes the first device of
its store, and a schema holds exactly one.

Schema names come from validated ids only: `wa_<id>` (quoted: ids may hold '-' and capitals), or, for
ids too long for Postgres's 63-byte names, `wa-<first 43 characters>-<16 hex digits of sha256(id)>`;
the third character keeps the two forms apart, so no two ids share a schema.

The Postgres location is a lib/pq URL holding the database password: never log it (`redacted()`).
"""

import hashlib
import logging
import os
import re
import shutil
from pathlib import Path
from urllib.parse import quote, urlencode

from django.conf import settings
from django.db import connections

from .ids import session_dir, validate_session_id

log = logging.getLogger(__name__)

FILES, POSTGRES = "files", "postgres"
MODES = (FILES, POSTGRES)
WHATSMEOW_FILE = "whatsmeow.sqlite3"
SIMULATOR_FILE = "simulator-device.json"
SIMULATOR_TABLE = "simulator_device"
SCHEMA_PREFIX = "wa_"
SHORT_PREFIX = "wa-"
MAX_IDENTIFIER = 63
SHORT_KEEP = MAX_IDENTIFIER - len(SHORT_PREFIX) - 1 - 16
# Connection options lib/pq understands; anything else in a URL would be sent to the server as a
# run-time parameter (which is how search_path gets there) and rejected if it is not one.
LIBPQ_OPTIONS = ("sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout")


class CredentialStoreError(Exception):
    """`code` is machine-readable: postgres_unavailable."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def mode() -> str:
    """`files` or `postgres` (settings resolved `auto` at startup)."""
    return settings.CREDENTIALS_STORE


def postgres_available() -> bool:
    return connections["default"].vendor == "postgresql"


def _require_postgres() -> None:
    if not postgres_available():
        raise CredentialStoreError(
            "postgres_unavailable",
            "the credentials store 'postgres' needs a PostgreSQL database (DATABASE_URL=postgres://...)",
        )


def schema_name(session_id: str) -> str:
    """The session's schema, unquoted; distinct for distinct ids (case and '-' vs '_' included)."""
    validate_session_id(session_id)
    name = SCHEMA_PREFIX + session_id
    if len(name) <= MAX_IDENTIFIER:
        return name
    digest = hashlib.sha256(session_id.encode()).hexdigest()[:16]
    return f"{SHORT_PREFIX}{session_id[:SHORT_KEEP]}-{digest}"


def quoted_schema(session_id: str) -> str:
    return '"' + schema_name(session_id).replace('"', '""') + '"'


def qualified(session_id: str, table: str) -> str:
    """`"wa_<id>"."<table>"` for SQL; `table` is one of ours, never outside input."""
    return f'{quoted_schema(session_id)}."{table}"'


def ensure_schema(session_id: str) -> str:
    """Create the session's schema if missing; returns its quoted name."""
    _require_postgres()
    schema = quoted_schema(session_id)
    with connections["default"].cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    return schema


def schema_exists(session_id: str) -> bool:
    if not postgres_available():
        return False
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema_name(session_id)])
        return cursor.fetchone() is not None


def schema_tables(session_id: str) -> list[str]:
    """The tables in the session's schema (none when it does not exist)."""
    if not postgres_available():
        return []
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY table_name",
            [schema_name(session_id)],
        )
        return [row[0] for row in cursor.fetchall()]


def application_name(session_id: str) -> str:
    """What Postgres shows (pg_stat_activity) for the connections of this session's process, whatsmeow's and
    Django's: an operator counting connections sees whose they are."""
    return f"wa-session {session_id}"


def name_connections(session_id: str) -> None:
    """In a session's process, before its first query: Django's connections carry the session's name."""
    db = settings.DATABASES["default"]
    if "postgresql" in db["ENGINE"]:
        db.setdefault("OPTIONS", {})["application_name"] = application_name(session_id)


def postgres_location(session_id: str) -> str:
    """A lib/pq URL to the default database whose search_path is the session's schema (created here)."""
    ensure_schema(session_id)
    db = connections["default"].settings_dict
    user = quote(str(db.get("USER") or ""), safe="")
    password = quote(str(db.get("PASSWORD") or ""), safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host, port = str(db.get("HOST") or ""), str(db.get("PORT") or "")
    options = db.get("OPTIONS") or {}
    query = {key: str(options[key]) for key in LIBPQ_OPTIONS if options.get(key) not in (None, "")}
    # lib/pq requires SSL unless told otherwise; libpq's (and psycopg's) default is "prefer".
    query.setdefault("sslmode", "prefer")
    if host.startswith("/"):  # a Unix socket folder
        query["host"], host = host, ""
    query["search_path"] = quoted_schema(session_id)
    query["application_name"] = application_name(session_id)
    netloc = credentials + (f"[{host}]" if ":" in host else host) + (f":{port}" if port else "")
    return f"postgres://{netloc}/{quote(str(db['NAME']), safe='')}?{urlencode(query, quote_via=quote)}"


def store_of(session_id: str) -> str:
    """The store this session's credentials are read from: the configured one, except that a session
    linked before the switch to `postgres` keeps its files until `move_credentials` moves them (an
    upgrade must never make a linked number scan a QR again)."""
    if mode() == POSTGRES and not exists(session_id, POSTGRES) and exists(session_id, FILES):
        log.warning("session %s: its credentials are still in files; run `manage.py move_credentials --to "
                    "postgres` so that any worker can resume it", session_id)
        return FILES
    return mode()


def location(session_id: str, store: str | None = None) -> str:
    """Where whatsmeow keeps this session's store: a SQLite path, or a lib/pq URL. The folder or the
    schema is created if missing."""
    if (store or store_of(session_id)) == POSTGRES:
        return postgres_location(session_id)
    folder = session_dir(session_id)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return str(folder / WHATSMEOW_FILE)


# A URL's `user:password@` (any scheme: the store's postgres://, a session's socks5:// proxy) and
# libpq's `password=...`, wherever they appear in a text (a Go error message may quote either).
_URL_PASSWORD = re.compile(r"""(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@"']*):[^\s"']*@""")
_KEY_PASSWORD = re.compile(r"""(?i)\b(password\s*=\s*)('[^']*'|[^\s"']+)""")


def redacted(text: str) -> str:
    """A location, or any text that may quote one, fit for a log line or an answer: every password
    replaced by ***."""
    return _KEY_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1:***@", text))


def whatsmeow_file(session_id: str) -> Path:
    return session_dir(session_id) / WHATSMEOW_FILE


def simulator_file(session_id: str) -> Path:
    return session_dir(session_id) / SIMULATOR_FILE


def exists(session_id: str, store: str | None = None) -> bool:
    """Whether the store holds anything of this session (a whatsmeow store or a simulator device)."""
    if (store or mode()) == POSTGRES:
        return bool(schema_tables(session_id))
    return whatsmeow_file(session_id).exists() or simulator_file(session_id).exists()


def forget(session_id: str) -> None:
    """Delete the session's credentials wherever this deployment keeps them: its folder (with the sent
    journal, as a new link starts a new history) and, on PostgreSQL, its schema."""
    folder = session_dir(session_id)
    if folder.exists():
        shutil.rmtree(folder)
        log.info("session %s: stored credentials deleted", session_id)
    if schema_exists(session_id):
        with connections["default"].cursor() as cursor:
            cursor.execute(f"DROP SCHEMA IF EXISTS {quoted_schema(session_id)} CASCADE")
        log.info("session %s: credentials schema %s dropped", session_id, schema_name(session_id))


# -- the simulator's device (a small JSON document) ------------------------------------------------

def load_simulator_device(session_id: str, store: str | None = None) -> str | None:
    """The simulator's device document as stored (JSON text), or None."""
    if (store or store_of(session_id)) == POSTGRES:
        if SIMULATOR_TABLE not in schema_tables(session_id):
            return None
        with connections["default"].cursor() as cursor:
            cursor.execute(f"SELECT device FROM {qualified(session_id, SIMULATOR_TABLE)} WHERE id = 1")
            row = cursor.fetchone()
        return row[0] if row else None
    try:
        return simulator_file(session_id).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def save_simulator_device(session_id: str, document: str, store: str | None = None) -> None:
    if (store or store_of(session_id)) == POSTGRES:
        ensure_schema(session_id)
        table = qualified(session_id, SIMULATOR_TABLE)
        with connections["default"].cursor() as cursor:
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {table} "
                "(id smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1), device text NOT NULL)"
            )
            cursor.execute(
                f"INSERT INTO {table} (id, device) VALUES (1, %s) ON CONFLICT (id) DO UPDATE SET device = EXCLUDED.device",
                [document],
            )
        return
    path = simulator_file(session_id)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(document)
    os.replace(tmp, path)


def delete_simulator_device(session_id: str, store: str | None = None) -> None:
    if (store or store_of(session_id)) == POSTGRES:
        if SIMULATOR_TABLE in schema_tables(session_id):
            with connections["default"].cursor() as cursor:
                cursor.execute(f"DELETE FROM {qualified(session_id, SIMULATOR_TABLE)}")
        return
    simulator_file(session_id).unlink(missing_ok=True)
