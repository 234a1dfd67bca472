"""Bad input, named one by one, on every entry point: the API (the send endpoints' adapter and the Django routes),
the config file, the admin. Each gets a clear error in the contract's shape and leaves nothing behind:
no row, no queued message, no change to sessions.config.json, no folder under sessions/.
(The socket path's bad ids: tests/sessions_app/test_consumer_auth.py and test_linking_e2e.py.)"""

import base64
import json
from urllib.parse import quote, urlencode

import orjson
import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from messaging.models import OutgoingMessage
from sessions_app.config_file import ConfigError, parse_config
from sessions_app.models import SessionCommand, WhatsAppSession
from tests.conftest import AsgiClient, make_pdf, pdf_body

pytestmark = pytest.mark.django_db(transaction=True)

BAD_SESSION_IDS = [
    "..",
    "../etc",
    "a/b",
    "a\\b",
    "x\x00y",
    "a" * 65,
    "a" * 100_000,
    "tiñda",
    "tienda\u202elima",  # right-to-left override
    "tienda lima",
    " ",
    "tienda.lima",
    "\ud800",  # a lone surrogate
]


@pytest.fixture
def nothing_left(configured, settings):
    """After the test: the config file as it was, no sessions folder, no new row, nothing queued."""
    before = settings.SESSIONS_CONFIG.read_bytes()
    yield
    assert settings.SESSIONS_CONFIG.read_bytes() == before
    assert not settings.SESSIONS_DIR.exists()
    assert sorted(WhatsAppSession.objects.values_list("session_id", flat=True)) == ["tienda_cusco", "tienda_lima"]
    assert OutgoingMessage.objects.count() == 0
    assert SessionCommand.objects.count() == 0


@pytest.fixture
def send_app():
    from whatsapp_service import asgi

    return asgi.application


def app():
    from whatsapp_service import asgi

    return asgi.application


def assert_error(response, status, code=None):
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert body["success"] is False and isinstance(body["error"], str) and body["message"].strip()
    if code is not None:
        assert body["error"] == code, body
    return body


def post_json(client, path, body, auth, **headers):
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return client.post(path, content=content, headers={"Content-Type": "application/json", **auth, **headers})


# -- session ids ---------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", BAD_SESSION_IDS, ids=range(len(BAD_SESSION_IDS)))
def test_a_bad_session_id_in_a_send_pdf_body_is_400(nothing_left, send_app, auth, bad):
    body = orjson.dumps(pdf_body(session_id="PLACEHOLDER")).replace(b'"PLACEHOLDER"', json.dumps(bad).encode())
    answer = assert_error(post_json(AsgiClient(send_app), "/api/send-pdf", body, auth), 400)
    # A lone surrogate is not valid JSON text (RFC 8259 wants Unicode): the body itself is refused.
    assert answer["error"] == ("invalid_json" if bad == "\ud800" else "invalid_session_id")


@pytest.mark.parametrize("bad", BAD_SESSION_IDS, ids=range(len(BAD_SESSION_IDS)))
def test_a_bad_session_id_in_a_url_is_refused_on_every_session_route(nothing_left, auth, bad):
    client = AsgiClient(app())
    bad = bad[:5000]  # a URL of 100,000 characters is refused by the client already
    # Dots encoded too: clients resolve a literal ".." segment before sending it.
    quoted = quote(bad.encode("utf-8", "surrogatepass"), safe="").replace(".", "%2E")
    requests = [
        ("GET", f"/api/sessions/{quoted}"),
        ("DELETE", f"/api/sessions/{quoted}"),
        ("GET", f"/api/sessions/{quoted}/qr"),
        ("POST", f"/api/sessions/{quoted}/pairing-code"),
        ("POST", f"/api/sessions/{quoted}/logout"),
        ("POST", f"/api/simulator/sessions/{quoted}/scan"),
        ("POST", f"/api/simulator/sessions/{quoted}/logout"),
        ("GET", f"/api/simulator/outbox?sessionId={quoted}"),
    ]
    for method, path in requests:
        kw = {"content": b'{"phone": "51987654321"}'} if method == "POST" else {}
        response = client.request(method, path, headers={"Content-Type": "application/json", **auth}, **kw)
        # A '/' splits the path: no route matches it (404 not_found); any other bad id is named.
        expected = (404, "not_found") if "/" in bad and "?" not in path else (400, "invalid_session_id")
        assert_error(response, *expected)


@pytest.mark.parametrize("bad", BAD_SESSION_IDS, ids=range(len(BAD_SESSION_IDS)))
def test_a_bad_session_id_in_the_config_file_is_named_with_its_entry(bad):
    text = json.dumps([{"sessionId": "tienda_lima"}, {"sessionId": bad}])
    with pytest.raises(ConfigError, match=r"entry 1: invalid session id"):
        parse_config(text)


def test_a_nul_in_a_description_of_the_config_file_is_named():
    with pytest.raises(ConfigError, match=r"entry 0 \(tienda_lima\): \"description\" contains a NUL"):
        parse_config(json.dumps([{"sessionId": "tienda_lima", "description": "Lima\x00"}]))


@pytest.fixture
def staff(configured):
    user = get_user_model().objects.create_superuser("admin", "admin@example.com", "clave-secreta-123")
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("bad", BAD_SESSION_IDS, ids=range(len(BAD_SESSION_IDS)))
def test_a_bad_session_id_in_the_admin_is_a_form_error(nothing_left, staff, bad):
    # As a browser sends it: UTF-8, percent-encoded (a lone surrogate becomes bytes that are not UTF-8).
    form = urlencode({"description": "x", "status": "stopped", "in_config": "on"})
    form += "&session_id=" + quote(bad.encode("utf-8", "surrogatepass"), safe="")
    response = staff.post("/admin/sessions_app/whatsappsession/add/", form,
                          content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200  # the form again, with the error
    page = response.content.decode()
    assert 'class="errorlist' in page
    if 0 < len(bad.strip()) <= 64 and "\x00" not in bad:  # the field's own checks (blank, length, NUL) come first
        assert "El id de sesión debe tener de 1 a 64 letras" in page
    response = staff.get("/link/?session_id=" + quote(bad.encode("utf-8", "surrogatepass"), safe=""))
    assert response.status_code == 200
    assert "El id de sesión debe tener de 1 a 64 letras" in response.content.decode()


def test_a_good_session_id_in_the_admin_is_saved(configured, staff):
    response = staff.post("/admin/sessions_app/whatsappsession/add/",
                          {"session_id": "tienda_piura", "description": "Piura", "status": "stopped"})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert WhatsAppSession.objects.filter(session_id="tienda_piura").exists()


# -- bodies --------------------------------------------------------------------------------------

NOT_JSON_OBJECTS = [b"", b"{not json", b"\xff\xfe\x00", b"[1, 2]", b'"texto"', b"null", b"12", b"true",
                    b'{"a": 1} trailing']


@pytest.mark.parametrize("raw", NOT_JSON_OBJECTS)
def test_a_send_pdf_body_that_is_not_a_json_object_is_400(nothing_left, send_app, auth, raw):
    assert_error(post_json(AsgiClient(send_app), "/api/send-pdf", raw, auth), 400, "invalid_json")


@pytest.mark.parametrize("raw", NOT_JSON_OBJECTS[1:])  # an empty body is no body: scan's phone is optional
@pytest.mark.parametrize("path", ["/api/sessions/tienda_lima/pairing-code", "/api/simulator/sessions/tienda_lima/scan"])
def test_other_json_bodies_that_are_not_objects_are_400(nothing_left, auth, path, raw):
    assert_error(post_json(AsgiClient(app()), path, raw, auth), 400, "invalid_json")


def test_a_body_that_is_not_json_at_all_is_415(nothing_left, auth):
    response = AsgiClient(app()).post("/api/sessions/tienda_lima/pairing-code", content=b"phone=51987654321",
                                      headers={"Content-Type": "application/x-www-form-urlencoded", **auth})
    assert_error(response, 415, "unsupported_media_type")


class Receiver:
    """An ASGI receive() that hands out a body in chunks and counts what was read."""

    def __init__(self, chunk: bytes, chunks: int | None):
        self.chunk, self.left, self.read = chunk, chunks, 0

    async def __call__(self):
        if self.left is not None and self.left <= 0:
            return {"type": "http.request", "body": b"", "more_body": False}
        if self.left is not None:
            self.left -= 1
        self.read += len(self.chunk)
        return {"type": "http.request", "body": self.chunk, "more_body": True}


async def call(path: str, headers: list, receive) -> tuple[int, dict]:
    from whatsapp_service.asgi import application

    sent = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "http_version": "1.1", "method": "POST", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "scheme": "http", "server": ("testserver", 80),
             "client": ("127.0.0.1", 5555), "headers": [(b"host", b"testserver"), *headers]}
    await application(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body)


@pytest.mark.parametrize("path", ["/api/send-pdf", "/api/send-document", "/api/send-image", "/api/send-text",
                                  "/api/sessions/tienda_lima/pairing-code", "/admin/login/"])
async def test_a_huge_declared_length_is_refused_without_reading_the_body(nothing_left, token, path):
    receive = Receiver(b"x" * 65536, None)
    headers = [(b"authorization", f"Bearer {token}".encode()), (b"content-type", b"application/json"),
               (b"content-length", b"10000000000")]
    status, body = await call(path, headers, receive)
    assert (status, body["error"]) == (413, "payload_too_large")
    assert receive.read == 0


@pytest.mark.parametrize("path", ["/api/send-pdf", "/api/send-document", "/api/send-image", "/api/send-text",
                                  "/api/sessions/tienda_lima/pairing-code", "/admin/login/"])
async def test_an_endless_body_without_length_is_cut_at_the_limit(nothing_left, token, settings, path):
    settings.MAX_BODY_BYTES = 256 * 1024
    receive = Receiver(b"x" * 65536, None)  # never ends
    headers = [(b"authorization", f"Bearer {token}".encode()), (b"content-type", b"application/json")]
    status, body = await call(path, headers, receive)
    assert (status, body["error"]) == (413, "payload_too_large")
    files = ("/api/send-pdf", "/api/send-document", "/api/send-image")
    limit = settings.MAX_REQUEST_BYTES if path in files else settings.MAX_BODY_BYTES
    assert receive.read <= limit + 65536


# -- base64, size, file names --------------------------------------------------------------------

PDF = make_pdf(3000, seed=11)
STD = base64.b64encode(PDF).decode()
URLSAFE = base64.urlsafe_b64encode(PDF).decode()
assert STD != URLSAFE


@pytest.mark.parametrize(
    "encoded",
    [
        STD,
        STD.rstrip("="),
        "\n".join(STD[i : i + 76] for i in range(0, len(STD), 76)),
        "\r\n".join(STD[i : i + 64] for i in range(0, len(STD), 64)),
        " " + " ".join(STD[i : i + 4] for i in range(0, len(STD), 4)) + "\t",
        URLSAFE,
        URLSAFE.rstrip("="),
        "\n".join(URLSAFE[i : i + 76] for i in range(0, len(URLSAFE), 76)),
        "data:application/pdf;base64," + STD,
    ],
    ids=["std", "unpadded", "mime-lines", "crlf", "spaces-tabs", "urlsafe", "urlsafe-unpadded", "urlsafe-lines",
         "data-uri"],
)
def test_base64_variants_are_accepted(configured, send_app, auth, encoded):
    response = post_json(AsgiClient(send_app), "/api/send-pdf", pdf_body(pdfBase64=encoded), auth)
    assert response.status_code == 202, response.text
    message = OutgoingMessage.objects.get(message_id=response.json()["messageId"])
    assert bytes(message.payload.data) == PDF


@pytest.mark.parametrize(
    "encoded",
    [STD[:-4] + "*" + STD[-3:], STD + "A", "%%%%", STD.replace("A", "\u00c1", 1), "====", "data:;base64,"],
    ids=["star", "dangling-char", "percent", "non-ascii", "only-padding", "empty-data-uri"],
)
def test_invalid_base64_is_refused(nothing_left, send_app, auth, encoded):
    response = post_json(AsgiClient(send_app), "/api/send-pdf", pdf_body(pdfBase64=encoded), auth)
    assert_error(response, 400)
    assert response.json()["error"] in ("invalid_base64", "not_a_pdf")


@pytest.mark.parametrize(
    "given, stored",
    [
        ("../../etc/passwd", "passwd.pdf"),
        ("/var/tmp/F001-1.pdf", "F001-1.pdf"),
        ("C:\\Users\\caja\\F001-2.PDF", "F001-2.PDF"),
        ("F001\x00-3.pdf", "F001-3.pdf"),
        ("F001\r\nX-Injected: 1.pdf", "F001X-Injected: 1.pdf"),
        ("\u202efdp.exe", "fdp.exe.pdf"),
        ("Comprobante ñandú.pdf", "Comprobante ñandú.pdf"),
        ("x" * 196 + ".pdf", "x" * 196 + ".pdf"),
    ],
)
def test_file_names_keep_only_a_clean_last_component(configured, send_app, auth, given, stored):
    response = post_json(AsgiClient(send_app), "/api/send-pdf", pdf_body(fileName=given), auth)
    assert response.status_code == 202, response.text
    assert OutgoingMessage.objects.get().file_name == stored


@pytest.mark.parametrize("given", ["x" * 300, "a/" + "x" * 300 + ".pdf", "../", "\x00\x01\x02", "...", "/", "\u200b"])
def test_unusable_or_long_file_names_are_400(nothing_left, send_app, auth, given):
    response = post_json(AsgiClient(send_app), "/api/send-pdf", pdf_body(fileName=given), auth)
    assert_error(response, 400, "invalid_file_name")


@pytest.mark.slow
def test_a_pdf_of_exactly_the_limit_passes_a_real_server_and_one_byte_more_is_413(configured, auth, tmp_path):
    import httpx

    from tests.processes import serve

    limit = 1_000_000
    with serve(tmp_path, "--no-worker", MAX_PDF_BYTES=str(limit)) as server:
        exact = httpx.post(f"{server.url}/api/send-pdf", json=pdf_body(pdf=make_pdf(limit)), headers=auth, timeout=60)
        over = httpx.post(f"{server.url}/api/send-pdf", json=pdf_body(pdf=make_pdf(limit + 1)), headers=auth,
                          timeout=60)
        # Over by a whole body: refused by its declared length.
        huge = httpx.post(f"{server.url}/api/send-pdf", content=b"{" + b" " * (3 * limit), timeout=60,
                          headers={**auth, "Content-Type": "application/json"})
    assert exact.status_code == 202, exact.text
    assert_error(over, 413, "payload_too_large")
    assert_error(huge, 413, "payload_too_large")
    assert [m.size for m in OutgoingMessage.objects.all()] == [limit]


@pytest.mark.parametrize("caption", ["Gracias\x00", "\x07campana", "x\x1b[31m", "borrar\x7f"])
def test_captions_with_control_characters_are_400(nothing_left, send_app, auth, caption):
    response = post_json(AsgiClient(send_app), "/api/send-pdf", pdf_body(caption=caption), auth)
    assert_error(response, 400, "invalid_caption")


def test_captions_keep_tabs_and_line_breaks(configured, send_app, auth):
    response = post_json(AsgiClient(send_app), "/api/send-pdf", pdf_body(caption="Boleta B001\r\n\tGracias"), auth)
    assert response.status_code == 202
    assert OutgoingMessage.objects.get().caption == "Boleta B001\r\n\tGracias"


@pytest.mark.parametrize("refused", [
    {"caption": "mal\x00"},  # psycopg refuses to send it, after the inserts before it went
    {"to": "5" * 25},  # Postgres refuses it (the column holds 20), in the middle of the batch's pipeline
], ids=["by_the_driver", "by_postgres"])
def test_a_value_the_database_refuses_fails_only_its_own_request_in_a_group_commit(configured, refused):
    """Found by the fuzz test on Postgres: a NUL in a text column failed every request committed with it.
    Intake refuses NULs now; should another such value slip through, only its own request fails, and what the
    batch inserted before it is not kept twice (the batch is undone, then redone one by one)."""
    from django.db import connection

    from messaging.asgi_send import api_error_for
    from messaging.errors import InvalidMessage
    from messaging.intake import document_request
    from messaging.queue_storage import Enqueued, write_batch

    if connection.vendor != "postgresql":
        pytest.skip("SQLite stores NUL characters and text of any length; Postgres refuses them")
    good = [document_request(session_id="tienda_lima", to="51987654321", file_base64=pdf_body()["pdfBase64"],
                             caption=f"ok {n}") for n in range(3)]
    import dataclasses

    bad = dataclasses.replace(good[0], **refused)
    results = write_batch([good[0], bad, good[1], good[2]])
    assert [type(r) for r in results] == [Enqueued, InvalidMessage, Enqueued, Enqueued]
    assert (api_error_for(results[1]).status_code, results[1].code) == (400, "invalid_parameters")
    assert sorted(OutgoingMessage.objects.values_list("caption", flat=True)) == ["ok 0", "ok 1", "ok 2"]
