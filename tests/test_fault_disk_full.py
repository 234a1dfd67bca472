"""The disk fills up under sessions.config.json (a real tmpfs of 64 KiB, filled to the last byte): adding a
session fails with a clear error, the old file stays intact and no temporary file is left; once there is
room again the same request works, without a restart."""

import asyncio
import json

import pytest

from sessions_app.config_file import SessionEntry, add_session_to_config, load_and_mirror, read_config
from sessions_app.models import WhatsAppSession
from tests.conftest import EXAMPLE_SESSIONS, need
from tests.fault_tools import TinyFileSystem, can_mount, socket_events
from tests.processes import serve

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def full_disk(service_files, settings, tmp_path):
    need(can_mount(), "root allowed to mount a small tmpfs")
    disk = TinyFileSystem(tmp_path / "disk").mount()
    try:
        config = disk.path / "sessions.config.json"
        config.write_text(json.dumps(EXAMPLE_SESSIONS, indent=2))
        settings.SESSIONS_CONFIG = config
        load_and_mirror()
        read_config()
        add_session_to_config(SessionEntry("tienda_lima"))  # present already: only creates the lock file
        disk.fill()
        yield disk
    finally:
        disk.unmount()


def leftovers(disk) -> set[str]:
    return {p.name for p in disk.path.iterdir()} - {"sessions.config.json", "sessions.config.json.lock", "filler"}


def test_adding_a_session_on_a_full_disk_fails_and_keeps_the_old_file(full_disk, settings):
    before = settings.SESSIONS_CONFIG.read_bytes()
    with pytest.raises(OSError) as failure:
        add_session_to_config(SessionEntry("tienda_nueva", "Nueva"))
    assert failure.value.errno == 28  # ENOSPC: No space left on device
    assert settings.SESSIONS_CONFIG.read_bytes() == before
    assert leftovers(full_disk) == set()

    full_disk.free()
    assert add_session_to_config(SessionEntry("tienda_nueva", "Nueva"))
    assert [e.session_id for e in read_config()] == ["tienda_lima", "tienda_cusco", "tienda_nueva"]


@pytest.mark.slow
def test_a_socket_for_a_new_session_on_a_full_disk_gets_an_error_then_works(full_disk, settings, token, tmp_path):
    before = settings.SESSIONS_CONFIG.read_bytes()
    with serve(tmp_path) as server:
        url = f"ws://127.0.0.1:{server.port}/ws/session/tienda_nueva?token={token}"
        events, code = asyncio.run(socket_events(url, timeout=30))
        assert [e["event"] for e in events] == ["error"], events
        assert "disco lleno" in events[0]["data"]
        assert code == 1011
        assert settings.SESSIONS_CONFIG.read_bytes() == before
        assert leftovers(full_disk) == set()
        assert not WhatsAppSession.objects.filter(session_id="tienda_nueva").exists()
        assert "cannot write the config file" in server.wait_output("cannot write the config file")

        full_disk.free()
        events, _ = asyncio.run(socket_events(url, until=lambda ev: len(ev) >= 1, timeout=30))
        assert events[0] == {"event": "status", "data": "initializing"}
    assert "tienda_nueva" in [e.session_id for e in read_config()]
