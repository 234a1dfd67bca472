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


class Socks5Proxy(WhatsAppProxy):
    """The same refusal over SOCKS5 (RFC 1928, with RFC 1929 user/password when the client offers it):
    records `host:port` of each CONNECT and the user names presented, then closes the connection."""

    def __init__(self):
        super().__init__()
        self.url = f"socks5://127.0.0.1:{self.port}"
        self.users: list[str] = []

    def _refuse(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                target = self._handshake(conn)
            except (OSError, ValueError):
                return
        if target:
            with self._changed:
                self.targets.append(target)
                self._changed.notify_all()

    def _handshake(self, conn: socket.socket) -> str | None:
        version, count = _read(conn, 2)
        methods = _read(conn, count)
        if version != 5:
            return None
        if 2 in methods:  # user/password: accept whatever is presented, remember the user name
            conn.sendall(b"\x05\x02")
            _, user_length = _read(conn, 2)
            user = _read(conn, user_length).decode("utf-8", "replace")
            _read(conn, _read(conn, 1)[0])  # the password, not kept
            self.users.append(user)
            conn.sendall(b"\x01\x00")
        else:
            conn.sendall(b"\x05\x00")
        _, command, _, kind = _read(conn, 4)
        if kind == 1:
            host = socket.inet_ntoa(_read(conn, 4))
        elif kind == 3:
            host = _read(conn, _read(conn, 1)[0]).decode("idna")
        elif kind == 4:
            host = "[" + socket.inet_ntop(socket.AF_INET6, _read(conn, 16)) + "]"
        else:
            return None
        port = int.from_bytes(_read(conn, 2), "big")
        return f"{host}:{port}" if command == 1 else None


def _read(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ValueError("closed mid-handshake")
        data += chunk
    return data


def report_proxy_environment(conn) -> None:
    """A process target: sends its forkserver's pid and the proxy variables of its startup environment."""
    import os

    conn.send({"forkserver": os.getppid(), "HTTPS_PROXY": os.environ.get("HTTPS_PROXY"),
               "HTTP_PROXY": os.environ.get("HTTP_PROXY")})
    conn.close()
