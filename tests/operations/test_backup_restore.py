"""backup_sessions and restore_sessions as an operator runs them, beside a running worker."""

import hashlib
import io
import json
import os
import sqlite3
import stat
import subprocess
import sys
import tarfile
import threading
import time

import pytest
from django.core.management import CommandError, call_command

from sessions_app.config_file import read_config
from sessions_app.ids import session_dir
from tests.messaging.test_dispatcher import FAST, Api
from tests.processes import ROOT, runworker, serve, service_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SIMULATOR_DEVICE = "simulator-device.json"


def manage(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=service_env(),
                          capture_output=True, text=True, timeout=120)


class BusyStore:
    """A SQLite store in WAL mode, written to all the time, as whatsmeow writes its own."""

    def __init__(self, path):
        self.path = path
        db = sqlite3.connect(path)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE whatsmeow_device (n INTEGER PRIMARY KEY, key BLOB NOT NULL)")
        db.commit()
        db.close()
        self.stop = threading.Event()
        self.written = 0
        self.thread = threading.Thread(target=self._write, daemon=True)

    def _write(self):
        db = sqlite3.connect(self.path, timeout=30)
        while not self.stop.is_set():
            with db:  # each row committed on its own, like a store's small transactions
                db.execute("INSERT INTO whatsmeow_device (key) VALUES (?)", (os.urandom(512),))
            self.written += 1
        db.close()

    def __enter__(self):
        self.thread.start()
        while self.written < 200:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def members(archive) -> dict[str, bytes]:
    with tarfile.open(archive, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def rows(path) -> list[tuple]:
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return db.execute("SELECT n, key FROM whatsmeow_device ORDER BY n").fetchall()
    finally:
        db.close()


def test_backup_while_connected_then_restore_and_the_session_connects_with_it(configured, auth, tmp_path):
    backups = tmp_path / "backups"
    web = serve(tmp_path, "--no-worker", **FAST).start()
    worker = runworker(tmp_path, **FAST).start()
    try:
        api = Api(web, auth)
        api.link("tienda_lima")
        api.link("tienda_cusco")
        store = session_dir("tienda_lima") / "whatsmeow.sqlite3"
        with BusyStore(store) as busy:
            before = busy.written
            result = manage("backup_sessions", "--output", str(backups))
            after = busy.written
        assert result.returncode == 0, result.stderr
        assert "session tienda_lima" in result.stdout and "session tienda_cusco" in result.stdout
        assert "whatsmeow.sqlite3: online SQLite backup" in result.stdout
        (archive,) = backups.glob("sessions-backup-*.tar.gz")
        assert stat.S_IMODE(archive.stat().st_mode) == 0o600

        content = members(archive)
        manifest = json.loads(content.pop("manifest.json"))
        assert manifest["sessions"] == ["tienda_cusco", "tienda_lima"]
        assert {f["path"]: f["sha256"] for f in manifest["files"]} == {
            name: hashlib.sha256(data).hexdigest() for name, data in content.items()
        }
        assert json.loads(content["sessions.config.json"]) == json.loads((tmp_path / "sessions.config.json").read_text())
        assert not [name for name in content if name.endswith(("-wal", "-shm"))]
        copy = tmp_path / "copy.sqlite3"
        copy.write_bytes(content["sessions/tienda_lima/whatsmeow.sqlite3"])
        snapshot = rows(copy)  # opens, passes the integrity check, and is one consistent moment:
        assert before <= len(snapshot) <= after and [n for n, _ in snapshot] == list(range(1, len(snapshot) + 1))
        lima_device = content[f"sessions/tienda_lima/{SIMULATOR_DEVICE}"]

        # Over a running session: refused, nothing touched.
        refused = manage("restore_sessions", str(archive))
        assert refused.returncode != 0
        assert "running: tienda_cusco, tienda_lima" in refused.stderr
        assert len(rows(store)) == busy.written

        worker.stop()
        for session_id in ("tienda_lima", "tienda_cusco"):
            for path in session_dir(session_id).iterdir():
                path.unlink()
            session_dir(session_id).rmdir()
        (tmp_path / "sessions.config.json").write_text("[]")

        restored = manage("restore_sessions", str(archive))
        assert restored.returncode == 0, restored.stderr
        assert "checksums verified" in restored.stdout
        assert (session_dir("tienda_lima") / SIMULATOR_DEVICE).read_bytes() == lima_device
        assert rows(session_dir("tienda_lima") / "whatsmeow.sqlite3") == snapshot  # open and match
        assert [e.session_id for e in read_config()] == ["tienda_cusco", "tienda_lima"]

        # The restored credentials work: the sessions connect again with their number, no QR scanned.
        with runworker(tmp_path, **FAST):
            api.wait(lambda: api.session("tienda_lima")["status"] == "connected", timeout=60)
            api.wait(lambda: api.session("tienda_cusco")["status"] == "connected", timeout=60)
            assert api.session("tienda_lima")["phone"] == json.loads(lima_device)["phone"]
    finally:
        worker.stop()
        web.stop()


def rewrite(archive, target, change):
    """A copy of the archive with `change(name, data) -> (name, data) | None` applied to each member."""
    with tarfile.open(archive, "r:gz") as src, tarfile.open(target, "w:gz") as dst:
        for member in src.getmembers():
            changed = change(member.name, src.extractfile(member).read())
            if changed is not None:
                name, data = changed
                info = tarfile.TarInfo(name)
                info.size = len(data)
                dst.addfile(info, io.BytesIO(data))
    return target


@pytest.fixture
def archive(configured, settings, tmp_path):
    folder = session_dir("tienda_lima")
    folder.mkdir(parents=True)
    (folder / SIMULATOR_DEVICE).write_text(json.dumps({"phone": "51911111111"}))
    call_command("backup_sessions", "--output", str(tmp_path / "backups"), stdout=io.StringIO())
    (path,) = (tmp_path / "backups").glob("*.tar.gz")
    return path


def test_an_altered_archive_is_refused_and_nothing_is_written(archive, tmp_path):
    original = (session_dir("tienda_lima") / SIMULATOR_DEVICE).read_text()
    (session_dir("tienda_lima") / SIMULATOR_DEVICE).write_text("current")
    tampered = rewrite(archive, tmp_path / "tampered.tar.gz",
                       lambda n, d: (n, d.replace(b"51911111111", b"51922222222")))
    with pytest.raises(CommandError, match="checksum mismatch for sessions/tienda_lima/simulator-device.json"):
        call_command("restore_sessions", str(tampered), stdout=io.StringIO())
    assert (session_dir("tienda_lima") / SIMULATOR_DEVICE).read_text() == "current"
    assert not [p for p in session_dir("tienda_lima").parent.iterdir() if p.name.startswith(".")]

    escaping = rewrite(archive, tmp_path / "escaping.tar.gz",
                       lambda n, d: (n.replace("sessions/tienda_lima/", "sessions/../../"), d))
    with pytest.raises(CommandError, match="not in its manifest"):
        call_command("restore_sessions", str(escaping), stdout=io.StringIO())
    listed_too = rewrite(archive, tmp_path / "listed.tar.gz",  # the manifest lies along with it
                         lambda n, d: (n.replace("sessions/tienda_lima/", "sessions/../../"),
                                       d.replace(b"sessions/tienda_lima/", b"sessions/../../")))
    with pytest.raises(CommandError, match="unexpected path in the archive"):
        call_command("restore_sessions", str(listed_too), stdout=io.StringIO())
    assert not (session_dir("tienda_lima").parent / SIMULATOR_DEVICE).exists()
    assert not (session_dir("tienda_lima").parent.parent / SIMULATOR_DEVICE).exists()

    call_command("restore_sessions", str(archive), stdout=io.StringIO())  # the real one restores
    assert (session_dir("tienda_lima") / SIMULATOR_DEVICE).read_text() == original
    aside = [p for p in session_dir("tienda_lima").parent.iterdir() if p.name.startswith(".replaced-tienda_lima-")]
    assert len(aside) == 1 and (aside[0] / SIMULATOR_DEVICE).read_text() == "current"


def test_keep_prunes_the_oldest_archives_only(archive, tmp_path):
    backups = archive.parent
    old = [backups / f"sessions-backup-2020010{d}T000000Z.tar.gz" for d in (1, 2, 3)]
    for path in old:
        path.write_bytes(b"old")
    unrelated = backups / "notes.txt"
    unrelated.write_text("mine")
    out = io.StringIO()
    call_command("backup_sessions", "--output", str(backups), "--keep", "2", stdout=out)
    kept = sorted(backups.glob("sessions-backup-*.tar.gz"))
    assert len(kept) == 2 and archive in kept  # the one before and the new one
    assert not any(p.exists() for p in old) and unrelated.exists()
    assert "removed old backup sessions-backup-20200101T000000Z.tar.gz" in out.getvalue()
    with pytest.raises(CommandError, match="--keep must be at least 1"):
        call_command("backup_sessions", "--output", str(backups), "--keep", "0", stdout=io.StringIO())
