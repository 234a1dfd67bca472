"""The send endpoints' adapter (messaging.asgi_send): what the schema documents is what it serves, a
failure inside it is the contract's 500, and a new message wakes the dispatcher once."""

import asyncio
import logging

import httpx
import pytest
from channels.layers import get_channel_layer

from messaging.asgi_send import ENDPOINTS
from messaging.models import OutgoingMessage
from messaging.wakeups import GROUP
from tests.conftest import AsgiClient, pdf_body
from tests.files import XLSX, document_body, image_body, make_image, make_xlsx

pytestmark = pytest.mark.django_db(transaction=True)

VALID = {
    "/api/send-pdf": pdf_body(fileName="F001-1.pdf", caption="Gracias"),
    "/api/send-document": document_body(make_xlsx(), "Cotizacion.xlsx", XLSX, caption="Su cotización"),
    "/api/send-image": image_body(make_image(), caption="El producto"),
    "/api/send-text": {"sessionId": "tienda_lima", "to": "51987654321", "text": "Su boleta está lista"},
}


@pytest.fixture
def client(configured):
    from whatsapp_service import asgi

    return AsgiClient(asgi.application)


def schema(client, auth) -> dict:
    response = client.get("/api/schema/", headers=auth)
    assert response.status_code == 200
    return response.json()


def test_the_schema_documents_exactly_the_send_endpoints_the_adapter_serves(client, auth):
    paths = schema(client, auth)["paths"]
    documented = {path for path, operations in paths.items()
                  if operations.get("post", {}).get("operationId", "").startswith("send_")}
    assert documented == set(ENDPOINTS) == set(VALID)


@pytest.mark.parametrize("path", sorted(ENDPOINTS))
def test_each_send_endpoint_takes_the_body_its_schema_documents(client, auth, path):
    document = schema(client, auth)
    operation = document["paths"][path]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    body = document["components"]["schemas"][body]
    endpoint = ENDPOINTS[path]
    assert set(body["properties"]) == set(endpoint.fields)
    assert set(body["required"]) == set(endpoint.required)
    assert [p["name"] for p in operation["parameters"] if p["in"] == "header"] == ["Idempotency-Key"]
    assert {"202", "400", "401", "403", "404", "409", "413", "503"} <= set(operation["responses"])

    # What the adapter asks for is what the schema calls required, and the documented body is taken.
    missing = client.post(path, json={}, headers=auth).json()
    assert missing["error"] == "missing_parameters"
    assert all(field in missing["message"] for field in body["required"])
    assert not [field for field in set(body["properties"]) - set(body["required"]) if field in missing["message"]]
    accepted = client.post(path, json={field: VALID[path][field] for field in body["properties"]
                                       if field in VALID[path]}, headers=auth)
    assert accepted.status_code == 202, accepted.text
    assert OutgoingMessage.objects.count() == 1


@pytest.mark.parametrize("path", sorted(ENDPOINTS))
def test_a_failure_inside_the_service_is_the_contracts_500(client, auth, path, monkeypatch, caplog):
    async def broken(request):
        raise RuntimeError("the queue writer broke")

    monkeypatch.setattr("messaging.services.queue_writer.enqueue", broken)
    with caplog.at_level(logging.ERROR, logger="messaging.asgi_send"):
        response = client.post(path, json=VALID[path], headers=auth)
    assert response.status_code == 500
    assert response.json() == {"success": False, "error": "internal_error", "message": "Error interno."}
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "the queue writer broke" in caplog.text  # the traceback is logged, not answered
    assert not OutgoingMessage.objects.exists()


def test_django_alone_does_not_take_a_send(configured, auth):
    """The DRF views only describe the send endpoints; served without the adapter in front, a send is refused
    as the server error it is rather than queued by a second implementation."""
    from whatsapp_service import asgi

    response = AsgiClient(asgi.django_app).post("/api/send-pdf", json=pdf_body(), headers=auth)
    assert response.status_code == 500
    assert response.json()["error"] == "internal_error"
    assert not OutgoingMessage.objects.exists()


async def test_a_new_message_wakes_the_dispatcher_once_and_a_replay_does_not(configured, auth):
    from whatsapp_service import asgi

    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(GROUP, channel)
    transport = httpx.ASGITransport(app=asgi.application)
    headers = {**auth, "Idempotency-Key": "venta-B001-3"}
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            first = await http.post("/api/send-text", json=VALID["/api/send-text"], headers=headers)
            woken = await asyncio.wait_for(layer.receive(channel), 5)
            again = await http.post("/api/send-text", json=VALID["/api/send-text"], headers=headers)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(layer.receive(channel), 0.5)
    finally:
        await layer.group_discard(GROUP, channel)
    assert first.status_code == again.status_code == 202
    assert first.json()["messageId"] == again.json()["messageId"]
    assert woken == {"type": "wakeup", "session_id": "tienda_lima"}
