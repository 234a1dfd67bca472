"""One running session process as the supervisor holds it: its pipe, the replies it owes, how it is
stopped, and the moment it ends. Everything here runs on the supervisor's event loop; pipe writes go to
threads, because a hung process stops reading and a write to it would block the loop.
"""

import asyncio
import itertools
import logging
import select
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from multiprocessing.connection import Connection

from . import protocol, session_process

log = logging.getLogger(__name__)

_req_ids = itertools.count(1)
# Messages taken off one pipe before the loop serves anything else: a chatty process cannot starve the
# API, the sockets or the other sessions.
READ_BATCH = 64


class SessionUnavailable(Exception):
    """No session process runs for this session (not configured, stopped, restarting)."""


class CommandTimeout(Exception):
    """The session process did not answer in time."""


class SessionHandle:
    def __init__(
        self,
        session_id: str,
        process,
        conn: Connection,
        writers: Executor,
        on_message: Callable[["SessionHandle", protocol.Event], None],
        on_exit: Callable[["SessionHandle", int | None], None],
    ):
        self.session_id = session_id
        self.process = process
        self.pid: int = process.pid
        self.conn = conn
        self.started_at = self.last_seen = time.monotonic()
        self.kill_reason: str | None = None  # set when the supervisor's side ends it for misbehaving
        self._window_start, self._window_count = self.started_at, 0
        self.exited = asyncio.Event()
        self.exit_code: int | None = None
        self._writers = writers
        self._write_lock = threading.Lock()
        self._pending: dict[int, asyncio.Future] = {}
        self._on_message = on_message
        self._on_exit = on_exit
        self._loop = asyncio.get_running_loop()
        # One poller for the handle's life: Connection.poll() builds a selector on every call.
        self._poller = select.poll()
        self._poller.register(conn.fileno(), select.POLLIN)
        self._loop.add_reader(conn.fileno(), self._readable)
        self._loop.add_reader(process.sentinel, self._ended)

    @property
    def running(self) -> bool:
        return not self.exited.is_set()

    async def request(self, command: protocol.Request, timeout: float) -> protocol.Reply:
        """Send a command that has a reply and return the reply."""
        req_id = next(_req_ids)
        reply = self._loop.create_future()
        self._pending[req_id] = reply
        try:
            async with asyncio.timeout(timeout):
                await self.send(command.numbered(req_id))
                return await reply
        except TimeoutError:
            raise CommandTimeout(f"{self.session_id}: no reply to {command.name} in {timeout} s") from None
        finally:
            self._pending.pop(req_id, None)
            if reply.done() and not reply.cancelled():
                # The process ended while the command was still being written: the caller has that
                # error from send() already; this one is the same news (not "never retrieved").
                reply.exception()

    async def send(self, message: protocol.Command) -> None:
        if not self.running:
            raise SessionUnavailable(f"the session process of {self.session_id} has ended")

        def write() -> None:
            with self._write_lock:  # one message at a time on the pipe
                self.conn.send(message)

        try:
            await self._loop.run_in_executor(self._writers, write)
        except (OSError, ValueError, TypeError) as exc:  # TypeError: the pipe was closed mid-write (it ended)
            raise SessionUnavailable(f"{self.session_id}: {exc}") from None

    async def stop(self, timeout: float) -> None:
        """Ask it to stop; terminate it after `timeout`, kill it if that is not enough either."""
        if not self.running:
            return
        try:
            await asyncio.wait_for(self.send(protocol.Stop()), timeout)
        except (SessionUnavailable, TimeoutError):
            pass
        for step in ("terminate", "kill"):
            try:
                await asyncio.wait_for(self.exited.wait(), timeout)
                return
            except TimeoutError:
                log.warning("session %s: process %d did not stop; %s", self.session_id, self.pid, step)
                getattr(self.process, step)()
            timeout = 2.0
        await self.exited.wait()

    def kill(self) -> None:
        if self.running:
            self.process.kill()

    def _has_data(self) -> bool:
        return bool(self._poller.poll(0))

    def _readable(self) -> None:
        try:
            for _ in range(READ_BATCH):
                if self.kill_reason is not None or not self._has_data():
                    return
                self._dispatch(self.conn.recv())
                self._count_message()
        except (EOFError, OSError):
            self._loop.remove_reader(self.conn.fileno())  # closed: _ended follows

    def _count_message(self) -> None:
        """A process that says more than SESSION_MAX_MESSAGES_PER_SECOND is flooding its pipe (a bug
        in it, or a client gone mad): it is killed and, like a crash, restarted with backoff."""
        from django.conf import settings

        now = time.monotonic()
        if now - self._window_start >= 1.0:
            self._window_start, self._window_count = now, 0
        self._window_count += 1
        if self._window_count > settings.SESSION_MAX_MESSAGES_PER_SECOND and self.kill_reason is None:
            self.kill_reason = f"flood: more than {settings.SESSION_MAX_MESSAGES_PER_SECOND} messages in a second"
            log.error("session %s: process %d is flooding its pipe; killing it", self.session_id, self.pid)
            self._loop.remove_reader(self.conn.fileno())
            self.kill()

    def _dispatch(self, message: object) -> None:
        self.last_seen = time.monotonic()
        match message:
            case protocol.Reply(req_id=req_id):
                reply = self._pending.pop(req_id, None)
                if reply is not None and not reply.done():
                    reply.set_result(message)
            case protocol.Heartbeat():
                pass
            case protocol.BackendEvent():
                self._on_message(self, message)
            case _:  # a crashed or foreign process's bytes
                log.warning("session %s: unknown message %.200r", self.session_id, message)

    def _ended(self) -> None:
        self._loop.remove_reader(self.process.sentinel)
        self._loop.remove_reader(self.conn.fileno())
        try:  # what it said before it ended comes first (not the rest of a flood)
            while self.kill_reason is None and self._has_data():
                self._dispatch(self.conn.recv())
        except (EOFError, OSError):
            pass
        self.exit_code = self.process.exitcode
        self.conn.close()
        self.process.close()
        for reply in self._pending.values():
            if not reply.done():
                reply.set_exception(SessionUnavailable(f"the session process of {self.session_id} ended"))
        self._pending.clear()
        self.exited.set()
        log.info("session %s: process %d %s", self.session_id, self.pid,
                 session_process.describe_exit(self.exit_code))
        self._on_exit(self, self.exit_code)
