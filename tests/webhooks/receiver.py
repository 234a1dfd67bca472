"""A real HTTP receiver for webhook tests: records every request and answers as the test says."""

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from webhooks.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify


@dataclass
class Request:
    headers: dict
    body: bytes
    received_at: float

    @property
    def json(self) -> dict:
        return json.loads(self.body)

    @property
    def event_id(self) -> str:
        return self.headers["x-webhook-id"]

    def signed_by(self, secret: str) -> bool:
        return verify(secret, self.body, self.headers.get(TIMESTAMP_HEADER.lower(), ""),
                      self.headers.get(SIGNATURE_HEADER.lower(), ""))


class Receiver:
    """`answer(n)` gives the status for the n-th request (0-based); 200 by default."""

    def __init__(self, port: int = 0, answer=lambda n: 200):
        self.requests: list[Request] = []
        self.answer = answer
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    n = len(receiver.requests)
                    receiver.requests.append(
                        Request({k.lower(): v for k, v in self.headers.items()}, body, time.time())
                    )
                status = receiver.answer(n)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/whatsapp"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "Receiver":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def received(self) -> list[Request]:
        with self._lock:
            return list(self.requests)

    def events(self) -> list[dict]:
        return [r.json for r in self.received()]
