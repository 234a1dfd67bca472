"""sessions.config.json under concurrent writers: fifty linking sockets for fifty new sessions at once,
writers in threads and in separate processes, and a writer killed in the middle of a write."""

import asyncio
import json
import multiprocessing
import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import sync_to_async

from sessions_app import config_file
from sessions_app.config_file import SessionEntry, add_session_to_config, read_config
from sessions_app.models import WhatsAppSession
from tests.conftest import EXAMPLE_SESSIONS
from tests.sessions_app.test_consumer import close_sync_thread_connections, socket  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db(transaction=True)
EXAMPLE_IDS = [s["sessionId"] for s in EXAMPLE_SESSIONS]


def assert_config_has(path, new_ids: list[str]) -> None:
    raw = json.loads(path.read_text())  # valid JSON, not only what read_config tolerates
    ids = [item["sessionId"] for item in raw]
    assert ids[:2] == EXAMPLE_IDS
    assert sorted(ids[2:]) == sorted(new_ids)
    assert len(ids) == len(set(ids))


async def test_fifty_sockets_opening_fifty_new_sessions_at_once(configured, token, settings):
    new_ids = [f"sucursal_{i:02d}" for i in range(50)]
    sockets = [socket(f"/ws/session/{sid}", token) for sid in new_ids]
    results = await asyncio.gather(*(ws.connect(timeout=30) for ws in sockets))
    assert all(connected for connected, _ in results)
    firsts = await asyncio.gather(*(ws.receive_json_from(timeout=30) for ws in sockets))
    assert firsts == [{"event": "status", "data": "initializing"}] * 50
    await asyncio.gather(*(ws.disconnect() for ws in sockets))

    assert_config_has(settings.SESSIONS_CONFIG, new_ids)
    rows = await sync_to_async(lambda: set(WhatsAppSession.objects.filter(in_config=True).values_list("pk", flat=True)))()
    assert rows == set(EXAMPLE_IDS) | set(new_ids)


def test_fifty_threads_appending_at_once(service_files, settings):
    new_ids = [f"hilo_{i:02d}" for i in range(50)]
    start = threading.Barrier(50)

    def add(session_id: str) -> bool:
        start.wait()
        return add_session_to_config(SessionEntry(session_id, f"Caja {session_id}"))

    with ThreadPoolExecutor(50) as pool:
        assert all(pool.map(add, new_ids))
    assert_config_has(settings.SESSIONS_CONFIG, new_ids)


def _add_in_child(path: str, ids: list[str], go) -> None:
    go.wait()
    for session_id in ids:
        add_session_to_config(SessionEntry(session_id), path=config_file.Path(path))
    os._exit(0)  # skip the parent's atexit handlers and database teardown in the forked child


def test_processes_appending_at_once(service_files, settings):
    """The lock must hold across processes (web and worker are separate in production)."""
    ctx = multiprocessing.get_context("fork")
    go = ctx.Event()
    batches = [[f"proc{p}_{i:02d}" for i in range(10)] for p in range(5)]
    children = [ctx.Process(target=_add_in_child, args=(str(settings.SESSIONS_CONFIG), b, go)) for b in batches]
    for child in children:
        child.start()
    go.set()
    for child in children:
        child.join(60)
        assert child.exitcode == 0
    assert_config_has(settings.SESSIONS_CONFIG, [sid for b in batches for sid in b])


def _die_mid_write(path: str) -> None:
    real_fsync = os.fsync

    def killed_after_half(fd):
        os.ftruncate(fd, os.fstat(fd).st_size // 2)  # a torn write on disk
        os.kill(os.getpid(), signal.SIGKILL)
        real_fsync(fd)

    os.fsync = killed_after_half
    add_session_to_config(SessionEntry("tienda_piura"), path=config_file.Path(path))
    os._exit(0)  # not reached when the kill works


def test_a_writer_killed_mid_write_leaves_the_old_file_and_no_stuck_lock(service_files, settings):
    path = settings.SESSIONS_CONFIG
    before = path.read_bytes()
    child = multiprocessing.get_context("fork").Process(target=_die_mid_write, args=(str(path),))
    child.start()
    child.join(30)
    assert child.exitcode == -signal.SIGKILL
    assert path.read_bytes() == before
    assert [e.session_id for e in read_config(path)] == EXAMPLE_IDS

    # The kernel released the dead writer's lock: the next writer gets through.
    assert add_session_to_config(SessionEntry("tienda_tacna"))
    assert_config_has(path, ["tienda_tacna"])
