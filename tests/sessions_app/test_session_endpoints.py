"""The session endpoints and the simulator's control endpoints through the service's ASGI application,
with no worker running (what the web answers by itself, and when the worker does not answer)."""

import pytest
from django.utils import timezone

from sessions_app.models import CommandState, SessionCommand, SessionStatus, SimulatorControl, SimulatorOutbox, WhatsAppSession
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
        ("POST", "/api/simulator/sessions/{id}/scan"),
        ("POST", "/api/simulator/sessions/{id}/drop"),
        ("POST", "/api/simulator/sessions/{id}/logout"),
        ("POST", "/api/simulator/sessions/{id}/replace"),
        ("POST", "/api/simulator/sessions/{id}/ban"),
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


def test_simulator_endpoints_exist_only_with_the_simulator(client, auth, settings):
    settings.WHATSAPP_BACKEND = "neonize"
    set_row(status=SessionStatus.QR, qr=QR)
    assert_error(client.post("/api/simulator/sessions/tienda_lima/scan", headers=auth, json={}), 404, "not_found")
    assert_error(client.get("/api/simulator/outbox", headers=auth), 404, "not_found")
    assert_error(client.get("/api/simulator/outbox"), 401, "missing_token")
    assert not SimulatorControl.objects.exists()


def test_phone_actions_are_queued_for_the_session_process_when_they_make_sense(client, auth):
    assert_error(client.post("/api/simulator/sessions/tienda_lima/scan", headers=auth, json={}), 409, "no_pending_qr")
    assert_error(client.post("/api/simulator/sessions/tienda_lima/drop", headers=auth), 409, "not_connected")
    assert_error(client.post("/api/simulator/sessions/tienda_lima/logout", headers=auth), 409, "not_linked")
    set_row(status=SessionStatus.QR, qr=QR)
    assert_error(client.post("/api/simulator/sessions/tienda_lima/scan", headers=auth, json={"phone": "x"}), 400,
                 "invalid_phone")
    response = client.post("/api/simulator/sessions/tienda_lima/scan", headers=auth, json={"phone": "51911111111"})
    assert response.status_code == 202 and response.json()["success"] is True
    set_row(status=SessionStatus.CONNECTED)
    assert client.post("/api/simulator/sessions/tienda_lima/drop", headers=auth).status_code == 202
    assert client.post("/api/simulator/sessions/tienda_lima/logout", headers=auth).status_code == 202
    assert client.post("/api/simulator/sessions/tienda_lima/replace", headers=auth).status_code == 202
    for bad in ("60", 0, True):
        assert_error(client.post("/api/simulator/sessions/tienda_lima/ban", headers=auth, json={"expireSeconds": bad}),
                     400, "invalid_parameters")
    ban = client.post("/api/simulator/sessions/tienda_lima/ban", headers=auth, json={"expireSeconds": 60})
    assert ban.status_code == 202
    actions = list(SimulatorControl.objects.order_by("id").values_list("session_id", "action", "payload"))
    assert actions == [
        ("tienda_lima", "scan", {"phone": "51911111111"}),
        ("tienda_lima", "drop", {}),
        ("tienda_lima", "logout", {}),
        ("tienda_lima", "replace", {}),
        ("tienda_lima", "ban", {"expire_seconds": 60}),
    ]


def test_outbox_lists_what_was_delivered_filtered_by_session_and_number(client, auth):
    sent_at = timezone.now()
    for session_id, to, wa_id in [("tienda_lima", "51987654321", "3EB0000000000000000001"),
                                  ("tienda_lima", "51911111111", "3EB0000000000000000002"),
                                  ("tienda_cusco", "51987654321", "3EB0000000000000000003")]:
        SimulatorOutbox.objects.create(session_id=session_id, to=to, file_name="F.pdf", caption="Gracias",
                                       sha256="ab" * 32, size=10, wa_message_id=wa_id, sent_at=sent_at)
    everything = client.get("/api/simulator/outbox", headers=auth).json()
    assert [m["waMessageId"] for m in everything] == [
        "3EB0000000000000000001", "3EB0000000000000000002", "3EB0000000000000000003"
    ]
    assert everything[0] == {
        "sessionId": "tienda_lima", "to": "51987654321", "type": "document", "fileName": "F.pdf",
        "caption": "Gracias", "text": "", "sha256": "ab" * 32, "size": 10, "waMessageId": "3EB0000000000000000001", "sentAt": sent_at.isoformat(),
    }
    filtered = client.get("/api/simulator/outbox?sessionId=tienda_lima&to=%2B51%20987-654-321", headers=auth).json()
    assert [m["waMessageId"] for m in filtered] == ["3EB0000000000000000001"]
    assert_error(client.get("/api/simulator/outbox?sessionId=../x", headers=auth), 400, "invalid_session_id")
