"""A real HTTP receiver for webhook tests: records every request, verifies its signature with the official
Standard Webhooks library (`standardwebhooks`, which nobody here wrote) as a sales system would, and answers
as the test says."""

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError

# Standard Webhooks secrets (whsec_ + base64 of random bytes): one in use, the one replacing it in a
# rotation, and one no sender has.
SECRET = "whsec_CXpz/6MIvuRDMqdYHSU/DFuepKt9+qw19vwhPiCv7Yw="
NEW_SECRET = "whsec_5+fADWDWrVBBe8LC5cHVis0xvQdCLrFwZKiZcIoaCFAThPR83uK/tw=="
WRONG_SECRET = "whsec_lOChlNglByQWRohO9gyA4soRfwNWVmRc"


def verification_error(secret: str, body: bytes, headers: dict) -> str | None:
    """None when the library verifies the request with this secret, else what it objected to."""
    try:
        Webhook(secret).verify(body, headers)
    except (WebhookVerificationError, ValueError) as exc:  # ValueError: a malformed header
        return f"{type(exc).__name__}: {exc}"
    return None


@dataclass
class Request:
    headers: dict
    body: bytes
    received_at: float
    verdicts: dict = field(default_factory=dict)  # secret -> verification_error() when it arrived

    @property
    def json(self) -> dict:
        return json.loads(self.body)

    @property
    def event_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def signatures(self) -> list[str]:
        return self.headers["webhook-signature"].split(" ")

    def signed_by(self, secret: str) -> bool:
        """The verdict when it arrived (the library refuses a timestamp 5 minutes old), or now."""
        if secret not in self.verdicts:
            self.verdicts[secret] = verification_error(secret, self.body, self.headers)
        return self.verdicts[secret] is None


class Receiver:
    """`secret`: the one this receiver holds; a request that does not verify with it is answered 401, as a
    real receiver would, and the sender takes that as final. `also_try`: secrets whose verdict is recorded
    on arrival too. `answer(n)` gives the status for the n-th request (0-based); 200 by default."""

    def __init__(self, port: int = 0, answer=lambda n: 200, secret: str | None = None, also_try=()):
        self.requests: list[Request] = []
        self.answer = answer
        self.secret = secret
        tried = ([secret] if secret else []) + list(also_try)
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                request = Request(headers, body, time.time(), {s: verification_error(s, body, headers) for s in tried})
                with receiver._lock:
                    n = len(receiver.requests)
                    receiver.requests.append(request)
                status = receiver.answer(n) if not secret or request.signed_by(secret) else 401
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
