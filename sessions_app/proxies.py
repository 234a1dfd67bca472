"""The proxy a session's WhatsApp connection goes through: a config entry's `proxy`, else WHATSAPP_PROXY.

whatsmeow (Go) takes it from HTTPS_PROXY, read from the environment its process started with, never
from a later change (NEONIZE.md). So a session with a proxy is forked from a forkserver started with
that proxy in its environment, one per distinct proxy; sessions without one keep multiprocessing's own
forkserver. Sessions that share a proxy share its forkserver's preloaded pages. This module is imported
by the forkservers before Django is set up: nothing here may need the app registry at import time.
"""

import io
import os
import socket
import subprocess
import threading
from multiprocessing import connection, context, forkserver, popen_forkserver, process, reduction as _reduction
from multiprocessing import resource_tracker, spawn, util
from urllib.parse import urlsplit

SCHEMES = ("socks5", "http", "https")
PROXY_ENV = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")


class InvalidProxy(ValueError):
    """The message never repeats the value: it may hold a password."""


def validate_proxy(value: object) -> str:
    """`socks5://[user:pass@]host:port`, `http://...` or `https://...`; "" for none."""
    problem = InvalidProxy("must be socks5://, http:// or https:// with a host and port")
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or len(value) > 2000 or any(c.isspace() or ord(c) < 32 for c in value):
        raise problem
    parts = urlsplit(value)
    try:
        port = parts.port
    except ValueError:
        raise problem from None
    if parts.scheme not in SCHEMES or not parts.hostname or not port or parts.query or parts.fragment:
        raise problem
    if parts.path not in ("", "/"):
        raise problem
    return value


def redact(value: str) -> str:
    """The proxy as it may be shown: its password replaced by ***."""
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.password is None:
        return value
    netloc = f"{parts.username}:***@{parts.netloc.rsplit('@', 1)[1]}"
    return parts._replace(netloc=netloc).geturl()


def proxy_for(session_id: str) -> str:
    """The proxy for the session now: its config entry's own, else WHATSAPP_PROXY, else "" (none).
    Read from sessions.config.json at each start, so the password is never copied into the database."""
    from django.conf import settings

    from .config_file import read_config

    entry = next((e for e in read_config() if e.session_id == session_id), None)
    return (entry.proxy if entry is not None else "") or settings.WHATSAPP_PROXY


# ---------------------------------------------------------------------------------------------------
# A forkserver per proxy. multiprocessing has one forkserver per process, started with the parent's
# os.environ and no way to give it another; changing os.environ meanwhile would leak the proxy into
# whatever else the worker starts (the webhook deliverer). The two methods below are Python 3.11's
# ForkServer.ensure_running and popen_forkserver.Popen._launch with the environment made explicit.


class _ForkServer(forkserver.ForkServer):
    def __init__(self, env: dict[str, str]):
        super().__init__()
        self._env = env
        self._server: subprocess.Popen | None = None  # held: an unreferenced Popen may be reaped by another

    def ensure_running(self) -> None:
        with self._lock:
            resource_tracker.ensure_running()
            if self._forkserver_pid is not None:
                if self._server.poll() is None:
                    return
                os.close(self._forkserver_alive_fd)
                self._forkserver_address = self._forkserver_alive_fd = self._forkserver_pid = None
            data = spawn.get_preparation_data("ignore")
            data = {k: v for k, v in data.items() if k in ("main_path", "sys_path")}
            with socket.socket(socket.AF_UNIX) as listener:
                address = connection.arbitrary_address("AF_UNIX")
                listener.bind(address)
                if not util.is_abstract_socket_namespace(address):
                    os.chmod(address, 0o600)
                listener.listen()
                alive_r, alive_w = os.pipe()
                try:
                    cmd = "from multiprocessing.forkserver import main; main(%d, %d, %r, **%r)" % (
                        listener.fileno(), alive_r, self._preload_modules, data)
                    exe = spawn.get_executable()
                    self._server = subprocess.Popen(
                        [exe, *util._args_from_interpreter_flags(), "-c", cmd], executable=exe, env=self._env,
                        pass_fds=(listener.fileno(), alive_r), restore_signals=False,
                    )
                except BaseException:
                    os.close(alive_w)
                    raise
                finally:
                    os.close(alive_r)
                self._forkserver_address, self._forkserver_alive_fd = address, alive_w
                self._forkserver_pid = self._server.pid


class _Popen(popen_forkserver.Popen):
    def _launch(self, process_obj: process.BaseProcess) -> None:
        prep_data = spawn.get_preparation_data(process_obj._name)
        buf = io.BytesIO()
        context.set_spawning_popen(self)
        try:
            _reduction.dump(prep_data, buf)
            _reduction.dump(process_obj, buf)
        finally:
            context.set_spawning_popen(None)
        self.sentinel, w = _servers[process_obj._proxy].connect_to_new_process(self._fds)
        _parent_w = os.dup(w)
        self.finalizer = util.Finalize(self, util.close_fds, (_parent_w, self.sentinel))
        with open(w, "wb", closefd=True) as f:
            f.write(buf.getbuffer())
        self.pid = forkserver.read_signed(self.sentinel)


class ProxiedProcess(process.BaseProcess):
    _start_method = "forkserver"
    _proxy = ""

    @staticmethod
    def _Popen(process_obj: "ProxiedProcess") -> _Popen:
        return _Popen(process_obj)


class _ProxiedContext(context.BaseContext):
    """A forkserver context whose processes come from the forkserver of one proxy."""

    _name = "forkserver"

    def __init__(self, proxy: str):
        self._proxy = proxy

    def Process(self, *args, **kwargs) -> ProxiedProcess:  # noqa: N802 - multiprocessing's name
        made = ProxiedProcess(*args, **kwargs)
        made._proxy = self._proxy
        return made

    def set_forkserver_preload(self, module_names: list[str]) -> None:
        _servers[self._proxy].set_forkserver_preload(module_names)


_servers: dict[str, _ForkServer] = {}
_servers_lock = threading.Lock()


def process_context(proxy: str) -> context.BaseContext:
    """Where a session process with this proxy comes from: multiprocessing's forkserver for none, else
    the forkserver of that proxy, started (on first use) with the worker's environment as it is then and
    the proxy in HTTPS_PROXY and HTTP_PROXY. The worker's own environment is left as it is."""
    if not proxy:
        return multiprocessing_forkserver()
    with _servers_lock:
        if proxy not in _servers:
            env = {k: v for k, v in os.environ.items() if k not in PROXY_ENV}
            env.update(dict.fromkeys(PROXY_ENV, proxy))
            _servers[proxy] = _ForkServer(env)
    return _ProxiedContext(proxy)


def multiprocessing_forkserver() -> context.BaseContext:
    import multiprocessing

    return multiprocessing.get_context("forkserver")


def forkserver_pids() -> dict[str, int]:
    """The running forkserver of each proxy (redacted), for diagnosis and tests."""
    return {redact(p): s._forkserver_pid for p, s in list(_servers.items()) if s._forkserver_pid is not None}

