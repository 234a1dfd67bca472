"""Real service processes for tests: `manage.py serve` and `manage.py runworker`, as `make run` starts them."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_database_url() -> str:
    """The URL of the database this test runs on, for a child process to share it."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def service_env(**overrides: str) -> dict:
    """Environment for a child service process sharing this test's database, config and sessions folder."""
    env = {
        **os.environ,
        "ENV_FILE": os.devnull,
        "API_STATIC_TOKEN": settings.API_STATIC_TOKEN,
        "DATABASE_URL": test_database_url(),
        "SESSIONS_CONFIG": str(settings.SESSIONS_CONFIG),
        "SESSIONS_DIR": str(settings.SESSIONS_DIR),
        "WHATSAPP_BACKEND": "simulator",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("REDIS_URL", None)
    env.update(overrides)
    return env


class ServiceProcess:
    """A `manage.py <command>` child in its own process group, so nothing it starts outlives the test."""

    def __init__(self, *args: str, env: dict, log_path: Path, port: int | None = None):
        self.args, self.env, self.port, self.log_path = args, env, port, log_path
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> "ServiceProcess":
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", *self.args], cwd=ROOT, env=self.env,
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        if self.port is not None:
            self.wait_port(timeout)
        return self

    def wait_port(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.args[0]} exited with {self.proc.returncode}:\n{self.output()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"{self.args[0]} did not listen on {self.port}:\n{self.output()}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_output(self, text: str, count: int = 1, timeout: float = 10) -> str:
        """The output once `text` is in it `count` times. The service writes its log on a thread of its own
        (log_format.BackgroundStreamHandler), so a line can land a moment after what it describes."""
        deadline = time.monotonic() + timeout
        while (output := self.output()).count(text) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return output

    def stack_dump(self, timeout: float = 10) -> str:
        """What each thread and loop task of the process is doing (SIGUSR1, core.stack_dump)."""
        start = len(self.output())
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while "=== end of stack dump ===" not in self.output()[start:] and time.monotonic() < deadline:
            time.sleep(0.1)
        text = self.output()[start:]
        return text[text.find("=== stack dump"):] if "=== stack dump" in text else "(no stack dump came)"

    def kill(self) -> None:
        """kill -9 of the whole process group: no clean shutdown of anything."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout: float = 20) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # anything left in its group
        except ProcessLookupError:
            pass
        self.log.close()
        return self.proc.returncode

    def __enter__(self) -> "ServiceProcess":
        return self if self.proc is not None else self.start()  # `with x.start():` must not start twice

    def __exit__(self, *exc) -> None:
        self.stop()


def serve(tmp_path: Path, *extra: str, **env: str) -> ServiceProcess:
    port = free_port()
    return ServiceProcess("serve", "--host", "127.0.0.1", "--port", str(port), *extra,
                          env=service_env(**env), log_path=tmp_path / f"serve-{port}.log", port=port)


def runworker(tmp_path: Path, **env: str) -> ServiceProcess:
    """`manage.py runworker` (the supervisor alone); its log names each session process it starts."""
    return ServiceProcess("runworker", env=service_env(**env), log_path=tmp_path / f"runworker-{free_port()}.log")


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (children, their children, ...), from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: the fields after the last ')' are fixed.
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z":
            parents[int(entry.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.2, what: str = "condition"):
    """The first true value of predicate(), asked every `interval` seconds; TimeoutError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached in {timeout} s")
        time.sleep(interval)
