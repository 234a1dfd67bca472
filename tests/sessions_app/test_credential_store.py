"""Where sessions' WhatsApp credentials live: files, or a Postgres schema per session
(sessions_app.credential_store), and a simulated session that links, moves and logs out with them."""

import json
import re
import subprocess
import sys
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from django.core.management import call_command
from django.db import connection

from messaging.models import MessageStatus, OutgoingMessage
from sessions_app import credential_store
from sessions_app.ids import InvalidSessionId, session_dir
from sessions_app.models import SessionStatus
from tests.messaging.test_send_queue import queue_messages
from tests.processes import ROOT, runworker, service_env
from tests.sessions_app.test_supervisor import FAST, link, phone_action, row, starts, wait_for, wait_status


@pytest.fixture
def postgres_store(service_files, settings, transactional_db):
    """Credentials in the test's Postgres database; every session schema is gone after the test (the
    test database outlives the test, and a flush leaves schemas alone)."""
    if connection.vendor != "postgresql":
        pytest.skip("credentials in Postgres: runs in the Postgres run of the suite")
    settings.CREDENTIALS_STORE = "postgres"
    yield
    with connection.cursor() as cursor:
        cursor.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'wa\\_%' OR nspname LIKE 'wa-%'")
        for (name,) in cursor.fetchall():
            cursor.execute(f'DROP SCHEMA "{name}" CASCADE')


SENT = (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ)


def session_connections(session_id: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                       [credential_store.application_name(session_id)])
        return cursor.fetchone()[0]


def schemas() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT nspname FROM pg_namespace")
        return {name for (name,) in cursor.fetchall()}


NEAR_IDS = ["tienda-lima", "tienda_lima", "Tienda_Lima", "TIENDA_LIMA", "tienda_lima2"]
LONG_IDS = ["x" * 64, "x" * 63 + "y", "x" * 60 + "-" * 4, "x" * 60 + "_" * 4, "x" * 61, "x" * 60]


def test_schema_names_are_distinct_valid_and_deterministic():
    names = [credential_store.schema_name(s) for s in NEAR_IDS + LONG_IDS]
    assert len(set(names)) == len(names)
    assert all(len(n.encode()) <= 63 for n in names)
    assert credential_store.schema_name("tienda-lima") == "wa_tienda-lima"
    assert credential_store.schema_name("x" * 60) == "wa_" + "x" * 60  # fits: kept whole
    shortened = credential_store.schema_name("x" * 64)
    assert re.fullmatch(r"wa-x{43}-[0-9a-f]{16}", shortened)
    assert credential_store.schema_name("x" * 64) == shortened
    for bad in ["../etc", "a b", "", "x" * 65, 'a"b', "ñandú"]:
        with pytest.raises(InvalidSessionId):
            credential_store.schema_name(bad)


def test_postgres_keeps_the_schemas_of_near_ids_apart(postgres_store):
    for session_id in NEAR_IDS + LONG_IDS:
        credential_store.save_simulator_device(session_id, json.dumps({"phone": session_id}))
    assert {credential_store.schema_name(s) for s in NEAR_IDS + LONG_IDS} <= schemas()
    for session_id in NEAR_IDS + LONG_IDS:  # each reads back its own
        assert json.loads(credential_store.load_simulator_device(session_id))["phone"] == session_id


def test_the_location_is_a_lib_pq_url_to_the_session_schema(postgres_store, monkeypatch):
    password = "p@ss:w/rd?&=%"
    monkeypatch.setitem(connection.settings_dict, "PASSWORD", password)
    where = credential_store.location("Tienda-Lima")
    url = urlsplit(where)
    query = parse_qs(url.query)
    assert url.scheme == "postgres" and unquote(url.password) == password
    assert url.path == "/" + connection.settings_dict["NAME"]
    assert query["search_path"] == ['"wa_Tienda-Lima"'] and query["sslmode"] == ["prefer"]
    assert query["application_name"] == ["wa-session Tienda-Lima"]  # whose connections they are, in pg_stat_activity
    assert "wa_Tienda-Lima" in schemas()  # created for whatsmeow, which needs it to exist
    assert password not in credential_store.redacted(where) and "***" in credential_store.redacted(where)


def test_files_location_is_the_session_folder(settings, tmp_path):
    settings.CREDENTIALS_STORE = "files"
    settings.SESSIONS_DIR = tmp_path / "sessions"
    assert credential_store.location("tienda_lima") == str(session_dir("tienda_lima") / "whatsmeow.sqlite3")
    assert session_dir("tienda_lima").is_dir()


def resolved_store(**env: str) -> subprocess.CompletedProcess:
    code = "import django; django.setup(); from django.conf import settings; print(settings.CREDENTIALS_STORE)"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**service_env(), "DJANGO_SETTINGS_MODULE": "whatsapp_service.settings", **env})


def test_auto_follows_the_database_and_postgres_without_postgres_does_not_start(tmp_path):
    sqlite = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    postgres = "postgres://postgres@127.0.0.1:5432/anything"
    assert resolved_store(CREDENTIALS_STORE="auto", DATABASE_URL=sqlite).stdout.strip() == "files"
    assert resolved_store(CREDENTIALS_STORE="auto", DATABASE_URL=postgres).stdout.strip() == "postgres"
    assert resolved_store(CREDENTIALS_STORE="files", DATABASE_URL=postgres).stdout.strip() == "files"
    refused = resolved_store(CREDENTIALS_STORE="postgres", DATABASE_URL=sqlite)
    assert refused.returncode != 0
    assert "CREDENTIALS_STORE=postgres needs a PostgreSQL database" in refused.stderr
    wrong = resolved_store(CREDENTIALS_STORE="s3", DATABASE_URL=sqlite)
    assert wrong.returncode != 0 and "use auto, files or postgres" in wrong.stderr


@pytest.mark.slow
@pytest.mark.postgres
def test_a_simulated_session_links_into_its_schema_moves_to_files_and_back_and_logout_drops_it(
    configured, postgres_store, tmp_path, settings
):
    in_postgres = {**FAST, "CREDENTIALS_STORE": "postgres"}
    with runworker(tmp_path, **in_postgres) as worker:
        link("tienda_lima", worker, phone="51911111111")
    assert row("tienda_lima").status == SessionStatus.STOPPED
    device = json.loads(credential_store.load_simulator_device("tienda_lima"))
    assert device["phone"] == "51911111111"
    assert credential_store.schema_tables("tienda_lima") == ["simulator_device"]
    assert not (session_dir("tienda_lima") / "simulator-device.json").exists()

    call_command("move_credentials", "--to", "files", "tienda_lima")
    assert json.loads((session_dir("tienda_lima") / "simulator-device.json").read_text()) == device
    assert credential_store.schema_name("tienda_lima") not in schemas()

    last_qr = row("tienda_lima").qr_updated_at
    with runworker(tmp_path, **FAST, CREDENTIALS_STORE="files") as worker:
        # Linked before: it connects with nobody scanning, and never shows a QR.
        assert wait_status("tienda_lima", SessionStatus.CONNECTED, worker).phone == "51911111111"
        assert row("tienda_lima").qr_updated_at == last_qr

    call_command("move_credentials", "--to", "postgres", "tienda_lima")
    assert not (session_dir("tienda_lima") / "simulator-device.json").exists()
    with runworker(tmp_path, **in_postgres) as worker:
        assert wait_status("tienda_lima", SessionStatus.CONNECTED, worker).phone == "51911111111"
        # Linked and sending, the session's process holds one connection, named after it (as a real
        # client holds whatsmeow's one): hundreds of sessions must fit the server's max_connections.
        message = queue_messages(1)[0]
        wait_for(lambda: OutgoingMessage.objects.get(pk=message.pk).status in SENT, "the send")
        assert session_connections("tienda_lima") == 1
        pid = starts(worker, "tienda_lima")[-1]
        phone_action("tienda_lima", "logout")
        wait_status("tienda_lima", SessionStatus.LOGGED_OUT, worker)
        wait_for(lambda: credential_store.schema_name("tienda_lima") not in schemas(), "the schema to be dropped")
        assert starts(worker, "tienda_lima") == [pid]
    assert not credential_store.exists("tienda_lima")



def test_a_session_linked_in_files_keeps_them_after_the_switch_to_postgres(postgres_store, caplog):
    """An upgrade to the postgres store must not make a linked number scan a QR again: its files are
    used (with a warning naming the command that moves them) until they are moved."""
    credential_store.save_simulator_device("tienda_lima", json.dumps({"phone": "51911111111"}), store="files")
    assert credential_store.location("tienda_lima") == str(session_dir("tienda_lima") / "whatsmeow.sqlite3")
    assert json.loads(credential_store.load_simulator_device("tienda_lima"))["phone"] == "51911111111"
    assert "move_credentials --to postgres" in caplog.text
    assert credential_store.location("tienda_cusco").startswith("postgres://")  # nothing stored: postgres
