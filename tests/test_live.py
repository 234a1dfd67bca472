"""The live check, for a machine with internet and a number linked for real: a PDF through a real
WhatsApp session (neonize) until WhatsApp's delivery receipt, and the signed `delivered` webhook.

Skipped unless LIVE_SESSION_ID (a session whose credentials are in LIVE_SESSIONS_DIR, default
`sessions/`) and LIVE_TO (a phone that will receive the PDF) are set; LIVE_TIMEOUT_SECONDS (default
180) bounds the wait for the receipt. Run it with `pytest -m live`.
"""

import os
import time
from pathlib import Path

import pytest

from sessions_app.config_file import load_and_mirror
from tests.messaging.test_dispatcher import Api
from tests.processes import ROOT, serve
from tests.webhooks.receiver import SECRET, Receiver

LIVE_SESSION_ID = os.environ.get("LIVE_SESSION_ID", "")
LIVE_TO = os.environ.get("LIVE_TO", "")

pytestmark = [
    pytest.mark.live,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not (LIVE_SESSION_ID and LIVE_TO), reason="LIVE_SESSION_ID and LIVE_TO are not set"),
]


def one_page_pdf(text: str) -> bytes:
    """A small, valid PDF a phone can open."""
    stream = f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def test_a_pdf_reaches_a_real_phone_and_is_delivered(settings, tmp_path, auth):
    sessions_dir = Path(os.environ.get("LIVE_SESSIONS_DIR") or ROOT / "sessions")
    assert (sessions_dir / LIVE_SESSION_ID).is_dir(), f"no stored credentials for {LIVE_SESSION_ID} in {sessions_dir}"
    config = tmp_path / "sessions.config.json"
    config.write_text(f'[{{"sessionId": "{LIVE_SESSION_ID}", "description": "live check"}}]')
    settings.SESSIONS_CONFIG, settings.SESSIONS_DIR = config, sessions_dir
    load_and_mirror()
    timeout = float(os.environ.get("LIVE_TIMEOUT_SECONDS", "180"))
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    with Receiver(secret=SECRET) as receiver, serve(
        # The one test that reaches WhatsApp: without the suite's refusing proxy (tests/conftest.py).
        tmp_path, WHATSAPP_BACKEND="neonize", HTTPS_PROXY="", WEBHOOK_URLS=receiver.url, WEBHOOK_SECRET=SECRET,
        SEND_MIN_INTERVAL_SECONDS="0", SEND_INTERVAL_JITTER_SECONDS="0",
    ) as server:
        api = Api(server, auth)
        api.wait(lambda: api.session(LIVE_SESSION_ID)["status"] == "connected", timeout=90, every=0.5)
        message_id = api.send(session_id=LIVE_SESSION_ID, to=LIVE_TO, pdf=one_page_pdf(f"Prueba en vivo {stamp}"),
                              fileName="prueba-en-vivo.pdf", caption=f"Prueba en vivo del servicio, {stamp}")
        done = api.wait(lambda: api.message(message_id)["status"] in ("delivered", "read", "failed")
                        and api.message(message_id), timeout=timeout, every=1.0)
        assert done["status"] in ("delivered", "read"), done
        api.wait(lambda: any(e.get("statuses", [{}])[0].get("messageId") == message_id
                             and e["statuses"][0]["status"] in ("delivered", "read") for e in receiver.events()),
                 timeout=30)
        requests = receiver.received()
    assert done["waMessageId"] and done["sentAt"] and done["deliveredAt"]
    assert all(r.signed_by(SECRET) for r in requests)
