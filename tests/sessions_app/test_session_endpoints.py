"""The session endpoints through the service's ASGI application, with no worker running (what the web
answers by itself, and when the worker does not answer). The simulator's: tests/simulator/."""

import pytest
from django.utils import timezone

from sessions_app.models import CommandState, SessionCommand, SessionStatus, WhatsAppSession
from tests.conftest import AsgiClient

pytestmark = pytest.mark.django_db(transaction=True)
QR = "2@ref,key1,key2,key3"


@pytest.fixture
def client(configured):
    from whatsapp_service import asgi

    return AsgiClient(asgi.application)


def set_row(session_id="tienda_lima", **fields):
    WhatsAppSession.objects.filter(session_id=session_id).update(**fields)


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and body["error"] == code and body["message"]


def test_qr_is_404_until_one_is_pending_then_json_or_svg(client, auth):
    assert_error(client.get("/api/sessions/tienda_lima/qr", headers=auth), 404, "no_pending_qr")
    set_row(status=SessionStatus.QR, qr=QR, qr_updated_at=timezone.now())
    response = client.get("/api/sessions/tienda_lima/qr", headers=auth)
    assert response.status_code == 200 and response.json() == {"qr": QR}
    image = client.get("/api/sessions/tienda_lima/qr?format=svg", headers=auth)
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/svg+xml"
    assert image.content.lstrip().startswith(b"<svg")
    # A connected session has no pending QR, whatever an old value says.
    set_row(status=SessionStatus.CONNECTED)
    assert_error(client.get("/api/sessions/tienda_lima/qr?format=svg", headers=auth), 404, "no_pending_qr")


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/api/sessions/{id}/qr"),
        ("POST", "/api/sessions/{id}/pairing-code"),
        ("POST", "/api/sessions/{id}/logout"),
        ("DELETE", "/api/sessions/{id}"),
    ],
)
def test_session_routes_check_token_and_id(client, auth, method, path):
    assert_error(client.request(method, path.format(id="tienda_lima")), 401, "missing_token")
    assert_error(client.request(method, path.format(id="tienda_lima"),
                                headers={"Authorization": "Bearer wrong-token-wrong-token"}), 403, "invalid_token")
    assert_error(client.request(method, path.format(id="tienda%20lima"), headers=auth, json={}), 400,
                 "invalid_session_id")
    assert_error(client.request(method, path.format(id="tienda_piura"), headers=auth, json={}), 404,
                 "unknown_session")


def test_pairing_code_needs_a_valid_phone(client, auth):
    for body in ({}, {"phone": "abc"}, {"phone": "123"}, {"phone": 51987654321}):
        assert_error(client.post("/api/sessions/tienda_lima/pairing-code", headers=auth, json=body), 400,
                     "invalid_phone")
    assert not SessionCommand.objects.exists()


def test_without_a_worker_the_request_is_withdrawn_and_answered_504(client, auth, settings):
    settings.SESSION_COMMAND_WAIT_SECONDS = 0.3
    response = client.post("/api/sessions/tienda_lima/pairing-code", headers=auth, json={"phone": "+51 987 654 321"})
    assert_error(response, 504, "worker_unavailable")
    command = SessionCommand.objects.get()
    assert (command.kind, command.payload, command.state) == ("pairing_code", {"phone": "51987654321"},
                                                             CommandState.FAILED)
    assert_error(client.post("/api/sessions/tienda_lima/logout", headers=auth), 504, "worker_unavailable")
    assert_error(client.request("DELETE", "/api/sessions/tienda_lima", headers=auth), 504, "worker_unavailable")
    # Nothing was removed without the worker having logged the number out.
    assert WhatsAppSession.objects.get(session_id="tienda_lima").in_config
