"""Who may open /ws/session/<id>: the token (header or ?token=) or a staff user of the admin on the same
origin. Everyone else, and every bad session id, is refused at the handshake with nothing written."""

import json

import pytest
from asgiref.sync import sync_to_async
from asgiref.testing import ApplicationCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from sessions_app.models import WhatsAppSession
from tests.sessions_app.test_consumer import app, close_sync_thread_connections, socket  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://testserver")


@sync_to_async
def login_cookie(*, is_staff: bool, is_active: bool = True) -> tuple[bytes, bytes]:
    user = get_user_model().objects.create_user(
        username=f"u{is_staff}{is_active}", password="x", is_staff=is_staff, is_active=is_active
    )
    client = Client()
    client.force_login(user)
    if not is_active:
        get_user_model().objects.filter(pk=user.pk).update(is_active=False)
    return (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())


@pytest.fixture
def untouched(configured, settings):
    """Asserts after the test that nothing reached the config file, the database or the sessions folder."""
    before = settings.SESSIONS_CONFIG.read_bytes()
    yield
    assert settings.SESSIONS_CONFIG.read_bytes() == before
    assert not settings.SESSIONS_DIR.exists()
    rows = WhatsAppSession.objects.order_by("session_id").values_list("session_id", "start_requested_at")
    assert list(rows) == [("tienda_cusco", None), ("tienda_lima", None)]


async def refused(path: str, token: str | None = None, headers=()) -> int:
    ws = socket(path, token, headers=headers)
    connected, code = await ws.connect(timeout=5)
    assert not connected
    return code


async def test_no_credentials_is_refused(untouched):
    assert await refused("/ws/session/tienda_nueva") == 4401


@pytest.mark.parametrize(
    "headers",
    [
        [(b"authorization", b"Bearer wrong-token-0123456789")],
        [(b"authorization", b"Basic dXNlcjpwYXNz")],
        [(b"authorization", b"Bearer")],
    ],
)
async def test_a_wrong_authorization_header_is_refused(untouched, headers):
    assert await refused("/ws/session/tienda_nueva", headers=headers) == 4403


async def test_a_wrong_query_token_is_refused(untouched):
    assert await refused("/ws/session/tienda_nueva?token=wrong-token-0123456789") == 4403


async def test_a_wrong_header_is_not_rescued_by_a_right_query_token(untouched, token):
    headers = [(b"authorization", b"Bearer wrong-token-0123456789")]
    assert await refused(f"/ws/session/tienda_nueva?token={token}", headers=headers) == 4403


async def test_a_logged_in_user_who_is_not_staff_is_refused(untouched):
    cookie = await login_cookie(is_staff=False)
    assert await refused("/ws/session/tienda_nueva", headers=[cookie, ORIGIN]) == 4403


async def test_an_inactive_staff_user_is_refused(untouched):
    cookie = await login_cookie(is_staff=True, is_active=False)
    assert await refused("/ws/session/tienda_nueva", headers=[cookie, ORIGIN]) == 4401


@pytest.mark.parametrize("origin", [None, b"http://evil.example", b"http://testserver.evil.example"])
async def test_a_staff_cookie_from_another_origin_is_refused(untouched, origin):
    cookie = await login_cookie(is_staff=True)
    headers = [cookie] + ([(b"origin", origin)] if origin else [])
    assert await refused("/ws/session/tienda_nueva", headers=headers) == 4403


async def test_a_staff_user_on_the_same_origin_may_link(configured):
    cookie = await login_cookie(is_staff=True)
    ws = socket("/ws/session/tienda_lima", headers=[cookie, ORIGIN])
    assert (await ws.connect(timeout=5))[0]
    assert await ws.receive_json_from(timeout=5) == {"event": "status", "data": "initializing"}
    await ws.disconnect()


async def test_a_trusted_origin_may_carry_the_staff_cookie(configured, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://admin.tienda.pe"]
    cookie = await login_cookie(is_staff=True)
    ws = socket("/ws/session/tienda_lima", headers=[cookie, (b"origin", b"https://admin.tienda.pe")])
    assert (await ws.connect(timeout=5))[0]
    await ws.disconnect()


@pytest.mark.parametrize(
    "bad_id",
    ["", "tienda%20lima", "..", "..%2F..%2Fetc", "a" * 65, "a" * 5000, "a" * 100_000, "tienda.lima", "ti%C3%B1a",
     "x%00y", "a/b", "a%5Cb", "..%5C..%5Cetc", "tienda%E2%80%AElima", "%ED%A0%80"],
)
async def test_an_invalid_session_id_is_refused_before_touching_anything(untouched, token, bad_id):
    assert await refused(f"/ws/session/{bad_id}", token) == 4400


async def test_the_refusal_is_an_http_answer_with_the_error_code_where_the_server_allows_it(untouched):
    """uvicorn (what `make run` serves with) offers the ASGI denial-response extension."""
    scope = {
        "type": "websocket",
        "path": "/ws/session/tienda_nueva",
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "subprotocols": [],
        "extensions": {"websocket.http.response": {}},
    }
    ws = ApplicationCommunicator(app(), scope)
    await ws.send_input({"type": "websocket.connect"})
    start = await ws.receive_output(timeout=5)
    body = await ws.receive_output(timeout=5)
    assert start["type"] == "websocket.http.response.start" and start["status"] == 401
    answer = json.loads(body["body"])
    assert answer["success"] is False and answer["error"] == "missing_token" and answer["message"]
    await ws.send_input({"type": "websocket.disconnect", "code": 1006})
    await ws.wait(timeout=5)
