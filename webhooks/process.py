"""The worker's handle on its webhook deliverer, a child process (`manage.py deliver_webhooks`):
started with the supervisor at a lower CPU priority, restarted when it dies, nudged through a pipe
after each commit that wrote events, stopped with the supervisor. In a process of its own, posting
webhooks takes neither the worker's interpreter lock nor CPU time that sending needs.
"""

import asyncio
import logging
import os
import signal
import subprocess
import sys
import threading

from django.conf import settings

from . import delivery

log = logging.getLogger(__name__)

NICE = 10
RESTART_SECONDS = 2.0


class DelivererProcess:
    def __init__(self) -> None:
        self._proc: subprocess.Popen | None = None
        self._nudge_fd: int | None = None
        self._lock = threading.Lock()
        self._watch: asyncio.Task | None = None
        self._stopping = False

    def start(self) -> None:
        self._spawn()
        delivery.set_current(self)
        self._watch = asyncio.get_running_loop().create_task(self._keep_running())

    def _spawn(self) -> None:
        read_end, write_end = os.pipe()
        try:
            self._proc = subprocess.Popen(
                [sys.executable, str(settings.BASE_DIR / "manage.py"), "deliver_webhooks",
                 "--nudges-fd", str(read_end), "--nice", str(NICE)],
                cwd=settings.BASE_DIR, pass_fds=(read_end,),
            )
        finally:
            os.close(read_end)
        os.set_blocking(write_end, False)
        with self._lock:
            old, self._nudge_fd = self._nudge_fd, write_end
        if old is not None:
            os.close(old)
        log.info("webhooks: deliverer process %d started", self._proc.pid)

    async def _keep_running(self) -> None:
        while not self._stopping:
            await asyncio.sleep(RESTART_SECONDS)
            if self._proc is not None and self._proc.poll() is not None and not self._stopping:
                log.warning("webhooks: deliverer process %d ended with %s; starting another",
                            self._proc.pid, self._proc.returncode)
                self._spawn()

    def nudge(self) -> None:
        """From any thread, after a commit that wrote events."""
        with self._lock:
            if self._nudge_fd is None:
                return
            try:
                os.write(self._nudge_fd, b"!")
            except (BlockingIOError, BrokenPipeError):
                pass  # already nudged and not yet read, or restarting: it polls anyway

    async def stop(self, timeout: float) -> None:
        self._stopping = True
        delivery.set_current(None)
        if self._watch is not None:
            self._watch.cancel()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(proc.wait, timeout)
            except subprocess.TimeoutExpired:
                log.warning("webhooks: deliverer process %d did not stop in time; killing it", proc.pid)
                proc.kill()
                await asyncio.to_thread(proc.wait)
        with self._lock:
            if self._nudge_fd is not None:
                os.close(self._nudge_fd)
                self._nudge_fd = None
