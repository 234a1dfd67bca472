"""POST /api/send-text: validation and the queue row through the service's ASGI application, then
end to end through the real service process on the simulator, in order with PDFs."""

import orjson
import pytest

from messaging.models import MessagePayload, OutgoingMessage
from tests.conftest import AsgiClient, make_pdf
from tests.messaging.test_dispatcher import FAST, Api
from tests.processes import serve

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client(configured):
    from whatsapp_service import asgi

    return AsgiClient(asgi.application)


def post(client, body, auth, **headers):
    return client.post("/api/send-text", content=orjson.dumps(body),
                       headers={"Content-Type": "application/json", **auth, **headers})


def assert_error(response, status, code):
    assert response.status_code == status, response.text
    body = response.json()
    assert (body["success"], body["error"]) == (False, code) and body["message"]


def test_accepted_text_is_committed_and_reads_back_as_a_text(client, auth):
    text = "Hola 👋, su boleta B001-77 ya fue emitida: S/ 120.50. Escríbanos a ventas@tienda.pe"
    response = post(client, {"sessionId": "tienda_lima", "to": "+51 987-654-321", "text": text}, auth)
    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["success"], body["status"], body["message"]) == (True, "queued", "Mensaje encolado para envío.")
    row = OutgoingMessage.objects.get(message_id=body["messageId"])
    assert (row.kind, row.to, row.file_name, row.mimetype) == ("text", "51987654321", "", "text/plain")
    assert bytes(MessagePayload.objects.get(message=row).data).decode() == text
    detail = client.get(f"/api/messages/{body['messageId']}", headers=auth).json()
    assert (detail["type"], detail["fileName"], detail["status"]) == ("text", None, "queued")


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"to": "51987654321", "text": "hola"}, 400, "missing_parameters"),
        ({"sessionId": "tienda_lima", "to": "51987654321"}, 400, "missing_parameters"),
        ({"sessionId": "tienda_lima", "to": "51987654321", "text": "   "}, 400, "invalid_text"),
        ({"sessionId": "tienda_lima", "to": "51987654321", "text": 12}, 400, "invalid_text"),
        ({"sessionId": "tienda_lima", "to": "51987654321", "text": "x" * 4097}, 400, "text_too_long"),
        ({"sessionId": "tienda_lima", "to": "12", "text": "hola"}, 400, "invalid_phone"),
        ({"sessionId": "tienda/../x", "to": "51987654321", "text": "hola"}, 400, "invalid_session_id"),
        ({"sessionId": "tienda_piura", "to": "51987654321", "text": "hola"}, 404, "unknown_session"),
    ],
)
def test_refusals_have_the_contract_shape(client, auth, body, status, code):
    assert_error(post(client, body, auth), status, code)
    assert not OutgoingMessage.objects.exists()


def test_token_is_required(client, token):
    assert_error(post(client, {"sessionId": "tienda_lima", "to": "51987654321", "text": "hola"}, {}), 401, "missing_token")
    assert_error(post(client, {"sessionId": "tienda_lima", "to": "51987654321", "text": "hola"},
                      {"Authorization": "Bearer wrong-token-0123456789"}), 403, "invalid_token")


def test_idempotency_key_replays_and_conflicts(client, auth):
    body = {"sessionId": "tienda_lima", "to": "51987654321", "text": "Gracias por su compra"}
    first = post(client, body, auth, **{"Idempotency-Key": "venta-F001-9"})
    again = post(client, body, auth, **{"Idempotency-Key": "venta-F001-9"})
    other = post(client, {**body, "text": "otro texto"}, auth, **{"Idempotency-Key": "venta-F001-9"})
    assert first.status_code == again.status_code == 202
    assert first.json()["messageId"] == again.json()["messageId"]
    assert_error(other, 409, "idempotency_conflict")
    assert OutgoingMessage.objects.count() == 1


@pytest.mark.slow
def test_texts_and_pdfs_go_out_in_order_and_are_delivered(configured, auth, tmp_path):
    with serve(tmp_path, **FAST) as server:
        api = Api(server, auth)
        api.link("tienda_lima")
        ids = []
        for n in range(3):
            ids.append(api.send(caption=f"pdf {n}", pdf=make_pdf(3000, seed=n)))
            response = api.client.post("/api/send-text", json={"sessionId": "tienda_lima", "to": "51987654321",
                                                               "text": f"texto {n} ✓"})
            assert response.status_code == 202, response.text
            ids.append(response.json()["messageId"])
        api.wait(lambda: all(api.message(i)["status"] == "delivered" for i in ids), timeout=60)
        outbox = api.outbox(sessionId="tienda_lima")
        unregistered = api.client.post("/api/send-text", json={"sessionId": "tienda_lima", "to": "51900000000",
                                                               "text": "hola"}).json()["messageId"]
        failed = api.wait(lambda: api.message(unregistered)["status"] == "failed" and api.message(unregistered))
        texts = [api.message(i) for i in ids[1::2]]
    assert [(o["type"], o["caption"] or o["text"]) for o in outbox] == [
        x for n in range(3) for x in (("document", f"pdf {n}"), ("text", f"texto {n} ✓"))
    ]
    assert [t["waMessageId"] for t in texts] == [o["waMessageId"] for o in outbox if o["type"] == "text"]
    assert all(t["type"] == "text" and t["attempts"] == 1 and t["deliveredAt"] for t in texts)
    assert failed["error"] == "not_on_whatsapp"
