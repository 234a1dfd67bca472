"""GET /api/sessions and /api/sessions/<id>: the configured sessions as the contract shows them."""

import json

import pytest

from sessions_app.config_file import load_and_mirror
from sessions_app.models import WhatsAppSession
from tests.conftest import AsgiClient

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client(configured):
    from whatsapp_service.asgi import application

    return AsgiClient(application)


def test_list_shows_every_configured_session(client, auth):
    WhatsAppSession.objects.filter(session_id="tienda_lima").update(
        status="connected", phone="51911111111", last_error=""
    )
    response = client.get("/api/sessions", headers=auth)
    assert response.status_code == 200
    by_id = {s["sessionId"]: s for s in response.json()}
    assert set(by_id) == {"tienda_lima", "tienda_cusco"}
    expected = {
        "sessionId": "tienda_lima",
        "description": "Sistema de Ventas de la Sede Lima",
        "status": "connected",
        "phone": "51911111111",
        "lastError": None,
    }
    assert {k: by_id["tienda_lima"].get(k) for k in expected} == expected
    assert by_id["tienda_cusco"]["status"] == "stopped"


def test_each_session_names_the_worker_that_runs_it(client, auth):
    from datetime import timedelta

    from django.utils import timezone

    from sessions_app.models import SessionLease

    now = timezone.now()
    SessionLease.objects.create(session_id="tienda_lima", owner="host-a:41:beef", epoch=3, expires_at=now + timedelta(seconds=30))
    SessionLease.objects.create(session_id="tienda_cusco", owner="host-b:42:cafe", epoch=1, expires_at=now - timedelta(seconds=1))
    by_id = {s["sessionId"]: s for s in client.get("/api/sessions", headers=auth).json()}
    assert by_id["tienda_lima"]["worker"] == "host-a:41:beef"
    assert by_id["tienda_cusco"]["worker"] is None  # its lease expired: nobody runs it
    assert client.get("/api/sessions/tienda_lima", headers=auth).json()["worker"] == "host-a:41:beef"


def test_detail_of_one_session_and_its_errors(client, auth):
    assert client.get("/api/sessions/tienda_cusco", headers=auth).json()["sessionId"] == "tienda_cusco"
    missing = client.get("/api/sessions/no_existe", headers=auth)
    assert missing.status_code == 404 and missing.json()["error"] == "unknown_session"
    bad = client.get("/api/sessions/a%20b", headers=auth)
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_session_id"


def test_session_removed_from_config_disappears_but_keeps_its_row(client, auth, settings):
    settings.SESSIONS_CONFIG.write_text(json.dumps([{"sessionId": "tienda_lima", "description": "Lima"}]))
    load_and_mirror()
    ids = [s["sessionId"] for s in client.get("/api/sessions", headers=auth).json()]
    assert ids == ["tienda_lima"]
    assert WhatsAppSession.objects.get(session_id="tienda_cusco").in_config is False
    assert client.get("/api/sessions/tienda_cusco", headers=auth).status_code == 404
    assert client.get("/api/sessions", headers=auth).json()[0]["description"] == "Lima"
