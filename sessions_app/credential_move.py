"""Moving sessions' WhatsApp credentials between the two stores of sessions_app.credential_store.

Each session is copied, the copy verified (the rows of every table counted on both sides), and only
then is the source removed; a session whose process may be running is refused (restore's test).

whatsmeow writes the same DDL to SQLite and to Postgres (checked for its store version 15: the
columns, constraints and indexes whatsmeow creates natively in Postgres equal those of its SQLite
statements replayed there). So, to Postgres: the `whatsmeow_*` statements of the file's sqlite_master
are replayed in the session's schema and the rows copied, all in one transaction; the store keeps its
version, and whatsmeow upgrades it as usual when it opens it. Back to a file: whatsmeow itself creates
the SQLite store (neonize's GetAllDevices, which opens a store without connecting, in a child process),
the versions must match, then the rows are copied. SQLite keeps booleans as 0/1 and may hand back text
where Postgres wants bytea or uuid: values are converted by the Postgres column's type.
"""

import os
import re
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, connections, transaction

from . import credential_store as store
from .config_file import read_config
from .ids import InvalidSessionId, session_dir, validate_session_id
from .restore import running_sessions

Progress = Callable[[str], None]
TABLE_RE = re.compile(r"whatsmeow_[a-z0-9_]+")
INDEX_NAME_RE = re.compile(r"[A-Za-z0-9_]+")
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")
WHATSMEOW_TIMEOUT_SECONDS = 120
# Creates an empty whatsmeow store at argv[1] without connecting to WhatsApp.
_CREATE_SQLITE_STORE = (
    "import sys\n"
    "from sessions_app.backends import neonize_runtime\n"
    "neonize_runtime.load_go_library()\n"
    "from neonize.client import ClientFactory\n"
    "ClientFactory.get_all_devices_from_db(sys.argv[1])\n"
)


class MoveError(Exception):
    """`code` is machine-readable: invalid_store, invalid_session_id, postgres_unavailable,
    postgres_unreachable, session_running, target_not_empty, unexpected_store, store_version_mismatch,
    whatsmeow_failed, verify_failed."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def move_credentials(session_ids: list[str] | None, to: str, progress: Progress = lambda _t: None) -> list[str]:
    """Move these sessions' credentials (all configured sessions when None) to `to`; returns the ids
    whose credentials were moved."""
    if to not in store.MODES:
        raise MoveError("invalid_store", f"unknown store {to!r}: use {' or '.join(store.MODES)}")
    if not store.postgres_available():
        raise MoveError("postgres_unavailable",
                        "moving credentials needs a PostgreSQL database (DATABASE_URL=postgres://...)")
    try:
        connections["default"].ensure_connection()
    except DatabaseError as exc:
        raise MoveError("postgres_unreachable", f"cannot reach the database: {exc}") from None
    try:
        ids = [validate_session_id(s) for s in session_ids] if session_ids else [e.session_id for e in read_config()]
    except InvalidSessionId as exc:
        raise MoveError("invalid_session_id", str(exc)) from None
    busy = running_sessions(ids)
    if busy:
        raise MoveError("session_running", f"these sessions are running: {', '.join(busy)}. Stop the worker "
                        "(or name the others) and try again; nothing was changed")
    moved = []
    for number, session_id in enumerate(ids, start=1):
        prefix = f"[{number}/{len(ids)}] {session_id}"
        if _move_one(session_id, to, lambda text, p=prefix: progress(f"{p}: {text}")):
            moved.append(session_id)
    return moved


def _move_one(session_id: str, to: str, progress: Progress) -> bool:
    source = store.FILES if to == store.POSTGRES else store.POSTGRES
    if not store.exists(session_id, source):
        progress(f"already in {to}" if store.exists(session_id, to) else "no stored credentials, nothing to move")
        return False
    if store.exists(session_id, to):
        raise MoveError("target_not_empty", f"{session_id}: credentials are in both stores; remove the ones in "
                        f"{to} (or those in {source}) first")
    counts = _to_postgres(session_id) if to == store.POSTGRES else _to_files(session_id)
    shown = ", ".join(f"{table} {n}" for table, n in counts.items())
    where = f"schema {store.schema_name(session_id)}" if to == store.POSTGRES else f"{session_dir(session_id)}"
    progress(f"moved to {to} ({where}); rows verified: {shown}")
    return True


# -- files -> postgres -----------------------------------------------------------------------------

def _to_postgres(session_id: str) -> dict[str, int]:
    sqlite_path = store.whatsmeow_file(session_id)
    device = store.load_simulator_device(session_id, store.FILES)
    with transaction.atomic(), connections["default"].cursor() as cursor:
        store.ensure_schema(session_id)
        counts = _sqlite_into_schema(sqlite_path, session_id, cursor) if sqlite_path.exists() else {}
        if device is not None:
            store.save_simulator_device(session_id, device, store.POSTGRES)
            counts[store.SIMULATOR_TABLE] = 1
        _verify(counts, {t: _postgres_count(cursor, session_id, t) for t in counts})
    # Committed and verified: only now does the source go.
    for path in [sqlite_path, *(Path(f"{sqlite_path}{s}") for s in SQLITE_COMPANIONS), store.simulator_file(session_id)]:
        path.unlink(missing_ok=True)
    return counts


def _sqlite_into_schema(path: Path, session_id: str, cursor) -> dict[str, int]:
    src = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True, timeout=30)
    try:
        tables = dict(src.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall())
        for name, sql in tables.items():
            if not TABLE_RE.fullmatch(name):
                raise MoveError("unexpected_store", f"{path.name}: table {name!r} is not whatsmeow's")
            _check_ddl(sql, rf'CREATE\s+TABLE\s+"?{name}"?\s*\(')
        indexes = src.execute("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL").fetchall()
        for name, table, sql in indexes:
            if not INDEX_NAME_RE.fullmatch(name) or table not in tables:
                raise MoveError("unexpected_store", f"{path.name}: index {name!r} is not whatsmeow's")
            _check_ddl(sql, rf'CREATE\s+(UNIQUE\s+)?INDEX\s+(IF\s+NOT\s+EXISTS\s+)?"?{name}"?\s+ON\s+"?{table}"?\s*\(')
        order = _parents_first(src, list(tables))
        cursor.execute(f"SET LOCAL search_path TO {store.quoted_schema(session_id)}")
        for table in order:
            cursor.execute(tables[table])
        for _name, _table, sql in indexes:
            cursor.execute(sql)
        counts = {}
        for table in order:
            types = _postgres_types(cursor, session_id, table)
            columns = [row[1] for row in src.execute(f'PRAGMA table_info("{table}")')]
            if set(columns) != set(types):
                raise MoveError("unexpected_store", f"{table}: columns differ after replaying its definition")
            names = ", ".join(f'"{c}"' for c in columns)
            rows = [tuple(_for_postgres(v, types[c]) for v, c in zip(row, columns))
                    for row in src.execute(f'SELECT {names} FROM "{table}"')]
            if rows:
                marks = ", ".join(["%s"] * len(columns))
                cursor.executemany(f"INSERT INTO {store.qualified(session_id, table)} ({names}) VALUES ({marks})", rows)
            counts[table] = len(rows)
        return counts
    except sqlite3.Error as exc:
        raise MoveError("unexpected_store", f"{path}: {exc}") from None
    finally:
        src.close()


def _check_ddl(sql: str, expected_start: str) -> None:
    """The statements come from a file: one CREATE of the named object, nothing else."""
    if not sql or ";" in sql or not re.match(rf"\s*{expected_start}", sql, re.IGNORECASE):
        raise MoveError("unexpected_store", f"unexpected statement in the store: {(sql or '')[:80]!r}")


def _for_postgres(value, pg_type: str):
    if value is None:
        return None
    if pg_type == "boolean":
        return value.strip().lower() in ("1", "t", "true") if isinstance(value, str) else bool(value)
    if pg_type == "bytea":
        return value.encode() if isinstance(value, str) else bytes(value)
    if pg_type == "uuid":
        return str(uuid.UUID(bytes=bytes(value))) if isinstance(value, bytes | memoryview) else str(value)
    if pg_type in ("smallint", "integer", "bigint"):
        return int(value)
    return value


# -- postgres -> files -----------------------------------------------------------------------------

def _to_files(session_id: str) -> dict[str, int]:
    tables = store.schema_tables(session_id)
    whatsmeow = [t for t in tables if TABLE_RE.fullmatch(t)]
    unknown = set(tables) - set(whatsmeow) - {store.SIMULATOR_TABLE}
    if unknown:
        raise MoveError("unexpected_store", f"schema {store.schema_name(session_id)} holds other tables: {sorted(unknown)}")
    device = store.load_simulator_device(session_id, store.POSTGRES)
    folder = session_dir(session_id)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    final = store.whatsmeow_file(session_id)
    tmp = final.with_name(final.name + ".tmp")
    counts: dict[str, int] = {}
    try:
        if whatsmeow:
            counts = _schema_into_sqlite(session_id, whatsmeow, tmp)
        if device is not None:
            store.save_simulator_device(session_id, device, store.FILES)
            if store.load_simulator_device(session_id, store.FILES) != device:
                raise MoveError("verify_failed", f"{store.SIMULATOR_FILE} does not read back as written; the schema is kept")
            counts[store.SIMULATOR_TABLE] = 1
        if whatsmeow:
            os.replace(tmp, final)
    except BaseException:
        for path in [tmp, *(Path(f"{tmp}{s}") for s in SQLITE_COMPANIONS)]:
            path.unlink(missing_ok=True)
        if device is not None:
            store.simulator_file(session_id).unlink(missing_ok=True)
        raise
    with connections["default"].cursor() as cursor:
        cursor.execute(f"DROP SCHEMA {store.quoted_schema(session_id)} CASCADE")
    return counts


def _schema_into_sqlite(session_id: str, tables: list[str], path: Path) -> dict[str, int]:
    for stale in [path, *(Path(f"{path}{s}") for s in SQLITE_COMPANIONS)]:
        stale.unlink(missing_ok=True)
    _whatsmeow_creates_store(path)
    dst = sqlite3.connect(path, timeout=30)
    try:
        created = [r[0] for r in dst.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        if sorted(created) != sorted(tables):
            raise MoveError("unexpected_store", f"whatsmeow's tables {sorted(created)} are not the schema's {sorted(tables)}")
        with connections["default"].cursor() as cursor:
            cursor.execute(f"SELECT version, compat FROM {store.qualified(session_id, 'whatsmeow_version')}")
            ours = _version(cursor.fetchall())
            theirs = _version(dst.execute("SELECT version, compat FROM whatsmeow_version").fetchall())
            if ours != theirs:
                raise MoveError("store_version_mismatch", f"the schema's store is at whatsmeow version {ours}, this "
                                f"neonize writes {theirs}: start the session once so whatsmeow upgrades it, then move")
            counts, expected = {}, {}
            with dst:  # one transaction
                dst.execute("DELETE FROM whatsmeow_version")
                for table in _parents_first(dst, tables):
                    columns = [row[1] for row in dst.execute(f'PRAGMA table_info("{table}")')]
                    types = _postgres_types(cursor, session_id, table)
                    if set(columns) != set(types):
                        raise MoveError("unexpected_store", f"{table}: the schema's columns are not whatsmeow's")
                    names = ", ".join(f'"{c}"' for c in columns)
                    cursor.execute(f"SELECT {names} FROM {store.qualified(session_id, table)}")
                    rows = [tuple(_for_sqlite(v) for v in row) for row in cursor.fetchall()]
                    dst.executemany(f'INSERT INTO "{table}" ({names}) VALUES ({", ".join("?" * len(columns))})', rows)
                    expected[table] = len(rows)
            for table in expected:
                counts[table] = dst.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
            _verify(expected, counts)
        (result,) = dst.execute("PRAGMA integrity_check").fetchone()
        if result != "ok":
            raise MoveError("verify_failed", f"the new SQLite store fails its integrity check: {result}")
        return counts
    except sqlite3.Error as exc:
        raise MoveError("unexpected_store", f"{path}: {exc}") from None
    finally:
        dst.close()


def _whatsmeow_creates_store(path: Path) -> None:
    project = str(settings.BASE_DIR)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([project, *filter(None, [os.environ.get("PYTHONPATH")])])}
    try:
        done = subprocess.run([sys.executable, "-c", _CREATE_SQLITE_STORE, str(path.resolve())], cwd=project, env=env,
                              capture_output=True, text=True, timeout=WHATSMEOW_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        raise MoveError("whatsmeow_failed", "whatsmeow did not create the SQLite store in time") from None
    if done.returncode != 0 or not path.exists():
        detail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise MoveError("whatsmeow_failed", f"whatsmeow could not create the SQLite store: {detail}")


def _version(rows: list) -> tuple | None:
    return tuple(rows[0]) if len(rows) == 1 else None


def _for_sqlite(value):
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, memoryview):
        return bytes(value)
    return value


# -- both ways ---------------------------------------------------------------------------------------

def _parents_first(db: sqlite3.Connection, tables: list[str]) -> list[str]:
    """The tables ordered so that each comes after those its foreign keys point at."""
    parents = {t: {row[2] for row in db.execute(f'PRAGMA foreign_key_list("{t}")')} - {t} for t in tables}
    order: list[str] = []
    while len(order) < len(tables):
        ready = sorted(t for t in tables if t not in order and parents[t] <= set(order))
        if not ready:
            raise MoveError("unexpected_store", f"foreign keys form a cycle among {sorted(set(tables) - set(order))}")
        order.extend(ready)
    return order


def _postgres_types(cursor, session_id: str, table: str) -> dict[str, str]:
    cursor.execute("SELECT column_name, data_type FROM information_schema.columns "
                   "WHERE table_schema = %s AND table_name = %s", [store.schema_name(session_id), table])
    return dict(cursor.fetchall())


def _postgres_count(cursor, session_id: str, table: str) -> int:
    cursor.execute(f"SELECT count(*) FROM {store.qualified(session_id, table)}")
    return cursor.fetchone()[0]


def _verify(expected: dict[str, int], found: dict[str, int]) -> None:
    wrong = {t: (n, found.get(t)) for t, n in expected.items() if found.get(t) != n}
    if wrong:
        raise MoveError("verify_failed", "row counts differ after the copy (expected, found): "
                        + ", ".join(f"{t} {a}/{b}" for t, (a, b) in wrong.items()) + "; the source is kept")
