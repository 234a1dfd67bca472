"""`manage.py move_credentials` with a real whatsmeow store (made by neonize 0.5.2) and as an operator
runs it: refusals, errors and what it prints."""

import os
import sqlite3
import subprocess
import sys

import pytest
from django.db import connection

from sessions_app import credential_store
from sessions_app.ids import session_dir
from sessions_app.models import SessionStatus
from tests import processes
from tests.processes import ROOT, free_port, runworker, service_env
from tests.sessions_app.test_credential_store import postgres_store  # noqa: F401 (a fixture)
from tests.sessions_app.test_supervisor import FAST, wait_status

DEVICE_JID = "51987654321:12@s.whatsapp.net"
# Opens a client on a store and connects; here WhatsApp is unreachable, so it fails at once.
CONNECT = """
import sys
from sessions_app.backends import neonize_runtime
neonize_runtime.load_go_library()
from neonize.client import NewClient
try:
    NewClient(sys.argv[1], uuid="probe").connect()
except Exception as exc:
    print("connect failed:", exc)
"""


def neonize(location: str) -> str:
    done = subprocess.run([sys.executable, "-c", CONNECT, location], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    return done.stdout + done.stderr


def linked_store(path) -> None:
    """whatsmeow's own store (created by a real client), holding a device as pairing leaves it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert "web.whatsapp.com" in neonize(str(path))
    db = sqlite3.connect(path)
    with db:
        db.execute(
            "INSERT INTO whatsmeow_device (jid, lid, registration_id, noise_key, identity_key, signed_pre_key,"
            " signed_pre_key_id, signed_pre_key_sig, adv_key, adv_details, adv_account_sig, adv_account_sig_key,"
            " adv_device_sig, platform, push_name) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (DEVICE_JID, "123456789012:12@lid", 4000000000, os.urandom(32), os.urandom(32), os.urandom(32), 1,
             os.urandom(64), os.urandom(32), os.urandom(90), os.urandom(64), os.urandom(32), os.urandom(64),
             "android", "Tienda Lima"))
        db.executemany("INSERT INTO whatsmeow_pre_keys VALUES (?,?,?,?)",
                       [(DEVICE_JID, n, os.urandom(32), n % 2 == 0) for n in range(1, 31)])
        db.execute("INSERT INTO whatsmeow_identity_keys VALUES (?,?,?)", (DEVICE_JID, "51911111111.0", os.urandom(32)))
        db.execute("INSERT INTO whatsmeow_sessions VALUES (?,?,?)", (DEVICE_JID, "51911111111.0", os.urandom(700)))
        db.execute("INSERT INTO whatsmeow_app_state_version VALUES (?,?,?,?)", (DEVICE_JID, "regular", 7, os.urandom(128)))
        db.execute("INSERT INTO whatsmeow_app_state_mutation_macs VALUES (?,?,?,?,?)",
                   (DEVICE_JID, "regular", 7, os.urandom(32), os.urandom(32)))
        db.execute("INSERT INTO whatsmeow_chat_settings VALUES (?,?,?,?,?)",
                   (DEVICE_JID, "51911111111@s.whatsapp.net", 0, True, False))
        db.execute("INSERT INTO whatsmeow_lid_map VALUES (?,?)", ("123456789012@lid", "51987654321"))
        db.execute("INSERT INTO whatsmeow_privacy_tokens VALUES (?,?,?,?,?)",
                   (DEVICE_JID, "51911111111@s.whatsapp.net", os.urandom(20), 1_700_000_000, None))
    db.close()


def sqlite_rows(path) -> dict[str, list[tuple]]:
    db = sqlite3.connect(path)
    try:
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: sorted(tuple(_same(v) for v in r) for r in db.execute(f'SELECT * FROM "{t}"')) for t in tables}
    finally:
        db.close()


def schema_rows(session_id: str) -> dict[str, list[tuple]]:
    found = {}
    with connection.cursor() as cursor:
        for table in credential_store.schema_tables(session_id):
            cursor.execute(f"SELECT * FROM {credential_store.qualified(session_id, table)}")
            columns = [c.name for c in cursor.description]
            found[table] = sorted(tuple(_same(v) for v in r) for r in cursor.fetchall())
            found[table + ":columns"] = columns
    return found


def _same(value):
    """SQLite keeps booleans as 0/1, Postgres as booleans; bytea may come back as memoryview."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, memoryview):
        return bytes(value)
    return value


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=service_env(**env),
                          capture_output=True, text=True, timeout=180)


@pytest.mark.postgres
def test_a_real_whatsmeow_store_moves_to_postgres_opens_there_and_comes_back(configured, postgres_store):
    path = session_dir("tienda_lima") / "whatsmeow.sqlite3"
    linked_store(path)
    before = sqlite_rows(path)
    assert len(before) == 17 and len(before["whatsmeow_pre_keys"]) == 30

    moved = manage("move_credentials", "--to", "postgres", "tienda_lima", CREDENTIALS_STORE="postgres")
    assert moved.returncode == 0, moved.stderr
    assert "[1/1] tienda_lima: moved to postgres (schema wa_tienda_lima)" in moved.stdout
    assert "whatsmeow_pre_keys 30" in moved.stdout
    assert not path.exists()
    in_postgres = {t: rows for t, rows in schema_rows("tienda_lima").items() if not t.endswith(":columns")}
    assert in_postgres == before

    # A real client resumes the moved device: whatsmeow finds its store as it left it (no migration or
    # SQL error), fails only at the network, and adds no second device.
    output = neonize(credential_store.location("tienda_lima"))
    assert "connect failed: failed to dial whatsapp web websocket" in output, output
    assert "pq:" not in output and "upgrade" not in output
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT jid FROM {credential_store.qualified('tienda_lima', 'whatsmeow_device')}")
        assert cursor.fetchall() == [(DEVICE_JID,)]
    assert schema_rows("tienda_lima")["whatsmeow_device"] == before["whatsmeow_device"]

    back = manage("move_credentials", "--to", "files", CREDENTIALS_STORE="files")  # every configured session
    assert back.returncode == 0, back.stderr
    assert "[1/2] tienda_lima: moved to files" in back.stdout
    assert "[2/2] tienda_cusco: no stored credentials, nothing to move" in back.stdout
    assert sqlite_rows(path) == before
    assert not credential_store.exists("tienda_lima", "postgres")
    assert "web.whatsapp.com" in neonize(str(path))  # and whatsmeow opens the file again


@pytest.mark.slow
@pytest.mark.postgres
def test_the_command_refuses_a_running_session_and_bad_ids_and_never_prints_the_password(
    configured, postgres_store, tmp_path
):
    password = "S3cret-Pa55word"
    with_password = processes.test_database_url().replace("postgres@", f"postgres:{password}@")  # trust auth ignores it
    assert password in with_password
    outputs = []

    bad = manage("move_credentials", "--to", "postgres", "../etc", DATABASE_URL=with_password)
    outputs.append(bad)
    assert bad.returncode != 0 and "invalid_session_id" in bad.stderr

    credential_store.save_simulator_device("tienda_lima", '{"phone": "51911111111"}', "files")
    with runworker(tmp_path, **FAST, CREDENTIALS_STORE="files") as worker:
        wait_status("tienda_lima", SessionStatus.CONNECTED, worker)
        busy = manage("move_credentials", "--to", "postgres", DATABASE_URL=with_password)
        outputs.append(busy)
        assert busy.returncode != 0
        assert "session_running: these sessions are running: tienda_cusco, tienda_lima" in busy.stderr
        assert (session_dir("tienda_lima") / "simulator-device.json").exists()
        assert not credential_store.exists("tienda_lima", "postgres")

    moved = manage("move_credentials", "--to", "postgres", "tienda_lima", DATABASE_URL=with_password)
    outputs.append(moved)
    assert moved.returncode == 0, moved.stderr
    assert "CREDENTIALS_STORE is files: set CREDENTIALS_STORE=postgres" in moved.stdout
    assert credential_store.load_simulator_device("tienda_lima", "postgres") == '{"phone": "51911111111"}'

    again = manage("move_credentials", "--to", "postgres", "tienda_lima", DATABASE_URL=with_password)
    outputs.append(again)
    assert again.returncode == 0 and "tienda_lima: already in postgres" in again.stdout

    for result in outputs:
        assert password not in result.stdout + result.stderr


def test_without_postgres_the_command_says_so(configured, tmp_path):
    no_postgres = manage("move_credentials", "--to", "postgres", DATABASE_URL=f"sqlite:///{tmp_path / 'x.sqlite3'}")
    assert no_postgres.returncode != 0 and "postgres_unavailable" in no_postgres.stderr
    password = "S3cret-Pa55word"
    gone = manage("move_credentials", "--to", "postgres", DATABASE_URL=f"postgres://postgres:{password}@127.0.0.1:"
                  f"{free_port()}/nothing", DATABASE_TIMEOUT_SECONDS="4")
    assert gone.returncode != 0 and "postgres_unreachable: cannot reach the database" in gone.stderr
    assert password not in gone.stdout + gone.stderr
