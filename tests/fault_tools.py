"""Things to break on purpose in fault tests: a Redis server of the test's own, a TCP proxy that can cut
the way to the database, a database that takes writes and does not answer, a tiny file system that fills up."""

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import websockets

from tests.processes import free_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


class RedisServer:
    """`redis-server` on a free port, no persistence; stop() and start() again on the same port."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            time.sleep(0.05)
        raise TimeoutError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; cut() drops every connection and refuses new ones (the
    database host is gone), restore() listens again on the same port."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> "TcpProxy":
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    restore = start

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for s in sockets:
            # shutdown first: close() alone leaves a socket that a pipe thread is reading alive (the
            # kernel keeps it for the blocked recv), so the client would wait forever for an answer.
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
            s.close()

    stop = cut

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            with self._lock:
                self._sockets -= {source, sink}


def hold_message_writes():
    """Another client of the test database keeps every write to the message table waiting (a lock
    on Postgres, the write lock on SQLite) until its rollback()."""
    from django.db import connection

    db = connection.settings_dict
    if connection.vendor == "sqlite":
        import sqlite3

        other = sqlite3.connect(db["NAME"], isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        return other
    import psycopg

    other = psycopg.connect(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, dbname=db["NAME"],
                            user=db["USER"], password=db["PASSWORD"] or None)
    other.execute("LOCK TABLE messaging_outgoingmessage IN EXCLUSIVE MODE")
    return other


class TinyFileSystem:
    """A tmpfs of a few KiB (root can mount one): fill() leaves no free byte, free() gives room again."""

    def __init__(self, path: Path, size_kib: int = 64):
        self.path, self.size_kib = path, size_kib
        self.mounted = False

    def mount(self) -> "TinyFileSystem":
        self.path.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size_kib}k,mode=0755", "tmpfs", str(self.path)],
                       check=True, capture_output=True)
        self.mounted = True
        return self

    def fill(self) -> None:
        with open(self.path / "filler", "ab", buffering=0) as f:
            for size in (65536, 4096, 512, 1):
                with contextlib.suppress(OSError):
                    while True:
                        f.write(b"\0" * size)

    def free(self) -> None:
        (self.path / "filler").unlink(missing_ok=True)

    def unmount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], check=False, capture_output=True)
            self.mounted = False


def can_mount() -> bool:
    """Root, and allowed to mount here (a container may forbid it): tried on a scratch folder."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        probe = TinyFileSystem(Path(scratch) / "probe", size_kib=4)
        try:
            probe.mount()
        except (OSError, subprocess.CalledProcessError):
            return False
        probe.unmount()
        return True


async def socket_events(url: str, until=None, timeout: float = 20.0, into: list | None = None
                        ) -> tuple[list[dict], int | None]:
    """Open a socket, collect its events (into `into` as they come) until the server closes it, or
    `until(events)` holds."""
    events: list[dict] = [] if into is None else into
    async with websockets.connect(url, open_timeout=timeout) as ws:
        try:
            async with asyncio.timeout(timeout):
                async for text in ws:
                    events.append(json.loads(text))
                    if until is not None and until(events):
                        return events, None
        except websockets.ConnectionClosed:
            pass
        return events, ws.close_code




def session_status(server, auth, session_id: str) -> str:
    return httpx.get(f"{server.url}/api/sessions/{session_id}", headers=auth, timeout=10).json().get("status")
