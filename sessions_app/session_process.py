"""A session process: one client backend in its own OS process, talking to the supervisor over a pipe.

`spawn()` starts one from multiprocessing's forkserver (or the forkserver of the session's proxy:
sessions_app.proxies), which imports the backend's PRELOAD_MODULES once so every session process shares
those pages. In the child, `run()` of the backend holds the main thread; a reader thread takes commands
off the pipe (`stop` at once, the rest in order on a command thread); a heartbeat thread proves the
process is alive. The messages: sessions_app.protocol.

This module is imported by the forkserver before Django is set up: nothing here may need the app
registry at import time.
"""

import ctypes
import logging
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection
from pathlib import Path

from django.conf import settings

from core import gc_tuning, log_format

from . import credential_store, protocol, proxies
from .backends import BackendError, ClientBackend, backend_class
from .sent_journal import SentJournal

log = logging.getLogger(__name__)

# Why a session process ended (its exit code); a negative code is the signal that killed it.
EXIT_OK = 0  # stopped on request, or the client's life ended (logged out, QR timeout)
EXIT_CONNECT_FAILED = 3  # run() raised BackendError: the connection could not be made
EXIT_CRASHED = 4  # run() raised something else
EXIT_PARENT_GONE = 5  # the supervisor went away
EXIT_LEASE_LOST = 6  # the supervisor stopped renewing the session's lease (sessions_app.session_leases)
EXIT_DESCRIPTIONS = {
    EXIT_OK: "ended",
    EXIT_CONNECT_FAILED: "connect failed",
    EXIT_CRASHED: "crashed",
    EXIT_PARENT_GONE: "supervisor gone",
    EXIT_LEASE_LOST: "lease not renewed",
}
PR_SET_PDEATHSIG = 1
# A child whose run() does not return after stop (or after its supervisor vanished) exits anyway.
STOP_GRACE_SECONDS = 5.0


def describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return EXIT_DESCRIPTIONS.get(code, f"exit code {code}")


def preload_modules(cls: type[ClientBackend]) -> list[str]:
    """What the forkserver imports before its first fork, in order: this module, the backend's own
    PRELOAD_MODULES, then the freeze of what they built (sessions_app.forkserver_freeze)."""
    return [__name__, *getattr(cls, "PRELOAD_MODULES", []), "sessions_app.forkserver_freeze"]


class LeaseExpired(Exception):
    """The lease's deadline passed before the process could start: another worker may run the number now."""


def spawn(session_id: str, backend: str | None = None, lease_until: float = float("inf")
          ) -> tuple[multiprocessing.Process, Connection]:
    """Start the session process for a (validated) session id; returns it and the supervisor's end of
    its pipe. Blocks while the forkserver starts (the first time) and forks. The process stops itself at
    `lease_until` unless a `lease` command moves it later: a time of `time.monotonic()`, whose clock every
    process of the machine shares. A deadline, not a duration: a duration would count from the moment the
    process starts, however long the start waited, and the process could outlive its lease. Raises
    LeaseExpired, forking nothing, when the deadline has passed by the time the fork is asked for."""
    from .ids import session_dir

    backend = backend or settings.WHATSAPP_BACKEND
    cls = backend_class(backend)
    store = session_dir(session_id)
    store.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    store.mkdir(mode=0o700, exist_ok=True)
    os.chmod(store, 0o700)  # mkdir's mode is filtered by the umask, and an old folder keeps its own
    _project_on_pythonpath()
    ctx = session_context(session_id, cls)
    # Only read when the forkserver starts, i.e. before the first session process.
    ctx.set_forkserver_preload(preload_modules(cls))
    ours, theirs = ctx.Pipe(duplex=True)
    process = ctx.Process(
        target=child_main,
        args=(session_id, backend, str(store), theirs, settings.SESSION_HEARTBEAT_SECONDS, lease_until),
        name=f"session-{session_id}",
        daemon=True,  # multiprocessing's exit handler terminates them if the supervisor forgets
    )
    try:
        if time.monotonic() >= lease_until:  # the supervisor was paused or its spawner busy this long
            ours.close()
            raise LeaseExpired(session_id)
        process.start()
    finally:
        theirs.close()
    return process, ours


def session_context(session_id: str, cls: type[ClientBackend]):
    """The multiprocessing context the session's process is started from: the forkserver of its proxy
    (the config entry's, else WHATSAPP_PROXY) for a backend that dials out, the shared one otherwise."""
    return proxies.process_context(proxies.proxy_for(session_id) if cls.USES_PROXY else "")


def _project_on_pythonpath() -> None:
    """Python 3.11's forkserver ignores the parent's sys.path and silently skips a preload module it
    cannot import, so a worker started from another directory would share nothing with its sessions
    (40 MB more each with neonize). The forkserver inherits the environment: put the project there."""
    project = str(Path(__file__).resolve().parent.parent)
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if project not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([project, *paths])


# ---------------------------------------------------------------------------------------------------
# The child side.


def _die_with_parent() -> None:
    """SIGKILL when the forkserver that forked us dies (it exits when the supervisor does)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the pipe's EOF still ends us
        pass


def _stdout_into_logging() -> threading.Thread:
    """Whatever writes to this process's stdout (a library's print(), the Go runtime's own output)
    becomes log records of this session instead of bare lines. Log records go to stderr: no loop."""
    read_fd, write_fd = os.pipe()
    sys.stdout.flush()
    os.dup2(write_fd, 1)
    os.close(write_fd)
    sys.stdout = open(1, "w", buffering=1, closefd=False, encoding="utf-8", errors="replace")
    printed = logging.getLogger("sessions_app.stdout")

    def pump() -> None:
        with open(read_fd, encoding="utf-8", errors="replace") as stream:
            for line in stream:
                if line.strip():
                    printed.info("%s", line.rstrip("\n"))

    thread = threading.Thread(target=pump, name="stdout-to-log", daemon=True)
    thread.start()
    return thread


def _drain_stdout(pump: threading.Thread) -> None:
    try:
        sys.stdout.flush()
        os.close(1)  # the pipe's only writer: the pump reads to its end
    except OSError:
        return
    pump.join(1.0)


def _exit_now(code: int) -> None:
    """os._exit: threads the client library left behind must not keep a finished session alive. It
    skips atexit, so the log lines still queued are written first."""
    log_format.flush()
    sys.stderr.flush()
    os._exit(code)


def _exit_soon(code: int, after: float) -> None:
    timer = threading.Timer(after, _exit_now, args=(code,))
    timer.daemon = True
    timer.start()


class _Child:
    def __init__(self, session_id: str, conn: Connection, heartbeat_seconds: float, store_dir: Path,
                 lease_until: float):
        self.session_id = session_id
        self.lease_ends = lease_until
        self.journal = SentJournal(store_dir / "sent-journal.jsonl")
        self.conn = conn
        self.heartbeat_seconds = heartbeat_seconds
        self.send_lock = threading.Lock()
        self.commands: queue.Queue[protocol.Command] = queue.Queue()
        self.done = threading.Event()
        self.stopping = False
        self.parent_gone = False
        self.lease_lost = False
        self.backend: ClientBackend | None = None

    def emit(self, event: protocol.Event) -> None:
        """Thread-safe; a broken pipe means the supervisor is gone, so is this process."""
        try:
            with self.send_lock:
                self.conn.send(event)
        except (OSError, ValueError, EOFError):
            os._exit(EXIT_PARENT_GONE)

    def report_error(self, text: str) -> None:
        log.error("session %s: %s", self.session_id, text)
        self.emit(protocol.Error(text[-2000:]))

    def read_commands(self) -> None:
        while True:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                self.parent_gone = True
                self._stop_backend()
                _exit_soon(EXIT_PARENT_GONE, STOP_GRACE_SECONDS)
                return
            match message:
                case protocol.Lease(until=until):
                    self.lease_ends = float(until or 0)
                case protocol.Stop():
                    self.stopping = True
                    self._stop_backend()
                    _exit_soon(EXIT_OK, STOP_GRACE_SECONDS)
                case protocol.Command():
                    self.commands.put(message)
                case _:
                    self.report_error(f"unknown command {str(message)[:200]}")

    def _stop_backend(self) -> None:
        if self.backend is not None:
            try:
                self.backend.stop()
            except Exception:
                self.report_error("stop failed: " + traceback.format_exc())

    def execute_commands(self) -> None:
        while True:
            message = self.commands.get()
            req_id = getattr(message, "req_id", None)
            try:
                answer = protocol.Reply.success(req_id, self._execute(message))
            except BackendError as exc:
                answer = protocol.Reply.failure(req_id, exc.message, exc.code)
            except Exception as exc:
                log.exception("session %s: command %s failed", self.session_id, message.name)
                answer = protocol.Reply.failure(req_id, f"{type(exc).__name__}: {exc}", "error")
            if req_id is not None:
                self.emit(answer)
            elif not answer.ok:
                self.report_error(f"{message.name}: {answer.error}")

    def _execute(self, message: protocol.Command) -> dict:
        if isinstance(message, protocol.LookupSent):
            return self.journal.lookup([str(ref) for ref in message.refs])
        run = _COMMANDS.get(type(message))
        if run is None:
            raise BackendError("unknown_command", f"unknown command {message.name!r}")
        if self.backend is None:
            raise BackendError("not_connected", "the client is not running")
        return run(self, self.backend, message)

    def journaled(self, message: protocol.SendDocument | protocol.SendImage | protocol.SendText,
                  result: dict) -> dict:
        if message.ref:
            self.journal.record(str(message.ref), result["wa_message_id"], result.get("timestamp"))
        return result

    def beat(self) -> None:
        next_trim = time.monotonic() + gc_tuning.HEAP_TRIM_SECONDS
        heartbeat = protocol.Heartbeat()
        while not self.done.wait(self.heartbeat_seconds):
            self.emit(heartbeat)
            if time.monotonic() >= next_trim:
                gc_tuning.trim_heap()
                next_trim = time.monotonic() + gc_tuning.HEAP_TRIM_SECONDS

    def keep_lease(self) -> None:
        """A supervisor that stops renewing (paused, cut off from the database) may lose the session to
        another worker: the connection ends before the lease can expire, so the number never runs twice."""
        while not self.done.wait(0.1):
            if time.monotonic() > self.lease_ends:
                log.warning("session %s: its lease was not renewed in time; stopping", self.session_id)
                self.stopping = self.lease_lost = True
                _exit_soon(EXIT_LEASE_LOST, 0.5)
                self._stop_backend()
                return

    def install_hooks(self) -> None:
        """Exceptions nobody catches (a ctypes callback's, a thread's) reach the supervisor."""

        def unraisable(info) -> None:
            text = "".join(traceback.format_exception(info.exc_type, info.exc_value, info.exc_traceback))
            self.report_error(f"unhandled exception in {info.object!r}: {text}")

        def thread_exception(args) -> None:
            text = "".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback))
            self.report_error(f"unhandled exception in thread {args.thread and args.thread.name}: {text}")

        sys.unraisablehook = unraisable
        threading.excepthook = thread_exception


def _send_document(child: _Child, backend: ClientBackend, m: protocol.SendDocument) -> dict:
    result = backend.send_document(m.to, m.data, m.file_name or "document.pdf", m.mimetype or "application/pdf",
                                   m.caption or "")
    return child.journaled(m, result)


def _send_image(child: _Child, backend: ClientBackend, m: protocol.SendImage) -> dict:
    return child.journaled(m, backend.send_image(m.to, m.data, m.mimetype, m.caption or ""))


def _send_text(child: _Child, backend: ClientBackend, m: protocol.SendText) -> dict:
    return child.journaled(m, backend.send_text(m.to, str(m.text)))


def _check_numbers(child: _Child, backend: ClientBackend, m: protocol.CheckNumbers) -> dict:
    return backend.check_numbers(list(m.numbers))


def _pairing_code(child: _Child, backend: ClientBackend, m: protocol.PairingCode) -> dict:
    return {"code": backend.pairing_code(m.phone)}


def _logout(child: _Child, backend: ClientBackend, m: protocol.Logout) -> dict:
    backend.logout()
    return {}


def _control(child: _Child, backend: ClientBackend, m: protocol.Control) -> dict:
    backend.control(str(m.action or ""), dict(m.payload or {}))
    return {}


# What each command does with the backend (LookupSent is the journal's, with or without a client).
_COMMANDS = {protocol.SendDocument: _send_document, protocol.SendImage: _send_image, protocol.SendText: _send_text,
             protocol.CheckNumbers: _check_numbers, protocol.PairingCode: _pairing_code,
             protocol.Logout: _logout, protocol.Control: _control}


def child_main(
    session_id: str, backend_name: str, store_dir: str, conn: Connection, heartbeat_seconds: float,
    lease_until: float,
) -> None:
    _die_with_parent()
    # Ctrl-C reaches the whole process group; the supervisor decides how its sessions stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    log_format.configure_if_unconfigured()  # the forkserver may not have set Django up
    log_format.set_process_fields(session_id=session_id)
    credential_store.name_connections(session_id)
    pump = _stdout_into_logging()
    if time.monotonic() >= lease_until:  # the fork came late: no backend, no connection, not one event
        log.warning("session %s: started after its lease's deadline; not connecting", session_id)
        _drain_stdout(pump)
        _exit_now(EXIT_LEASE_LOST)
    child = _Child(session_id, conn, heartbeat_seconds, Path(store_dir), lease_until)
    child.install_hooks()
    for target, name in ((child.read_commands, "commands-in"), (child.execute_commands, "commands"),
                         (child.beat, "heartbeat"), (child.keep_lease, "lease")):
        threading.Thread(target=target, name=name, daemon=True).start()
    code = EXIT_OK
    try:
        child.backend = backend_class(backend_name)(session_id, Path(store_dir), child.emit)
        if not child.stopping:
            child.backend.run()
    except BackendError as exc:
        if not child.stopping:
            child.emit(protocol.ConnectFailure(exc.code, exc.message))
            code = EXIT_CONNECT_FAILED
    except BaseException:
        child.report_error("the client stopped with an error: " + traceback.format_exc())
        code = EXIT_CRASHED
    if child.parent_gone:
        code = EXIT_PARENT_GONE
    elif child.lease_lost:
        code = EXIT_LEASE_LOST
    child.done.set()
    _drain_stdout(pump)
    _exit_now(code)
