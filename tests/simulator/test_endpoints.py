"""The simulator's control endpoints through the service's ASGI application, with no worker running: what
the web answers by itself and the SimulatorControl rows it leaves for the session's process."""

import pytest
from django.utils import timezone

from sessions_app.models import SessionStatus
from simulator.models import SimulatorControl, SimulatorOutbox
from tests.conftest import AsgiClient
from tests.sessions_app.test_session_endpoints import QR, assert_error, set_row

pytestmark = pytest.mark.django_db(transaction=True)

ACTIONS = ["scan", "drop", "logout", "replace", "ban", "read"]


@pytest.fixture
def client(configured):
    from whatsapp_service import asgi

    return AsgiClient(asgi.application)


@pytest.mark.parametrize("action", ACTIONS)
def test_control_routes_check_token_and_id(client, auth, action):
    path = "/api/simulator/sessions/{id}/" + action
    assert_error(client.post(path.format(id="tienda_lima")), 401, "missing_token")
    assert_error(client.post(path.format(id="tienda_lima"), headers={"Authorization": "Bearer wrong-token-wrong-token"}),
                 403, "invalid_token")
    assert_error(client.post(path.format(id="tienda%20lima"), headers=auth, json={}), 400, "invalid_session_id")
    assert_error(client.post(path.format(id="tienda_piura"), headers=auth, json={}), 404, "unknown_session")
    assert not SimulatorControl.objects.exists()


def test_phone_actions_are_queued_for_the_session_process_when_they_make_sense(client, auth):
    assert_error(client.post("/api/simulator/sessions/tienda_lima/scan", headers=auth, json={}), 409, "no_pending_qr")
    assert_error(client.post("/api/simulator/sessions/tienda_lima/drop", headers=auth), 409, "not_connected")
    assert_error(client.post("/api/simulator/sessions/tienda_lima/logout", headers=auth), 409, "not_linked")
    assert_error(client.post("/api/simulator/sessions/tienda_lima/read", headers=auth, json={"to": "51987654321"}),
                 409, "not_connected")
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
    for body in ({}, {"to": "abc"}, {"to": "123"}, {"to": ["51987654321"]}):
        assert_error(client.post("/api/simulator/sessions/tienda_lima/read", headers=auth, json=body), 400,
                     "invalid_phone")
    read = client.post("/api/simulator/sessions/tienda_lima/read", headers=auth, json={"to": "+51 987-654-321"})
    assert read.status_code == 202 and read.json()["success"] is True
    actions = list(SimulatorControl.objects.order_by("id").values_list("session_id", "action", "payload"))
    assert actions == [
        ("tienda_lima", "scan", {"phone": "51911111111"}),
        ("tienda_lima", "drop", {}),
        ("tienda_lima", "logout", {}),
        ("tienda_lima", "replace", {}),
        ("tienda_lima", "ban", {"expire_seconds": 60}),
        ("tienda_lima", "read", {"to": "51987654321"}),
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
        "sessionId": "tienda_lima", "to": "51987654321", "type": "document", "mimeType": "application/pdf",
        "fileName": "F.pdf",
        "caption": "Gracias", "text": "", "sha256": "ab" * 32, "size": 10, "waMessageId": "3EB0000000000000000001", "sentAt": sent_at.isoformat(),
    }
    filtered = client.get("/api/simulator/outbox?sessionId=tienda_lima&to=%2B51%20987-654-321", headers=auth).json()
    assert [m["waMessageId"] for m in filtered] == ["3EB0000000000000000001"]
    assert_error(client.get("/api/simulator/outbox?sessionId=../x", headers=auth), 400, "invalid_session_id")
    assert_error(client.get("/api/simulator/outbox"), 401, "missing_token")
