"""An HTTPS proxy on 127.0.0.1 that lets nothing through: the tests' own way to make WhatsApp unreachable.

whatsmeow dials through `HTTPS_PROXY` (NEONIZE.md), read by Go from the environment the process started
with, so it must be in the environment of a process before that process starts (a session process, a
worker, a `python -c` probe). The proxy records each `CONNECT host:port` it is asked for, then closes the
connection: the real client's connect fails at once with `unexpected EOF`, on a machine with internet too.
"""

import socket
import threading
import time


class WhatsAppProxy:
    def __init__(self, answer: bytes = b""):
        # What the proxy says before closing: nothing (the client sees EOF), or e.g. a 403 status line.
        self.answer = answer
        self.targets: list[str] = []
        self._changed = threading.Condition()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._closed = False
        threading.Thread(target=self._serve, name="whatsapp-proxy", daemon=True).start()

    def _serve(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._refuse, args=(conn,), daemon=True).start()

    def _refuse(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            request = b""
            try:
                while b"\r\n\r\n" not in request and len(request) < 8192:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    request += chunk
                if self.answer:
                    conn.sendall(self.answer)
            except OSError:
                pass
        words = request.split(b"\r\n", 1)[0].split()
        if len(words) >= 2 and words[0] == b"CONNECT":
            with self._changed:
                self.targets.append(words[1].decode("latin-1"))
                self._changed.notify_all()

    def wait_for(self, target: str, count: int = 1, timeout: float = 30.0) -> list[str]:
        """Every target asked for so far, once `target` was asked for `count` times."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.targets.count(target) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no CONNECT {target} x{count} within {timeout} s: {self.targets}")
                self._changed.wait(left)
            return list(self.targets)

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def __enter__(self) -> "WhatsAppProxy":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
