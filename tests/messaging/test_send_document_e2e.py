"""Any document and images end to end through the real service process (`manage.py serve`) on the simulator:
posted through the API, sent by the session process, received by the simulated WhatsApp with bytes and types
unchanged, in the order they were posted; content that is not its declared type never leaves."""

import hashlib

import pytest

from tests.conftest import make_pdf, pdf_body
from tests.files import DOCX, XLSX, document_body, image_body, make_docx, make_image, make_xlsx
from tests.messaging.test_dispatcher import FAST, Api
from tests.processes import serve

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def post(api: Api, path: str, body: dict) -> str:
    response = api.client.post(path, json=body)
    assert response.status_code == 202, response.text
    return response.json()["messageId"]


def test_xlsx_docx_and_png_arrive_with_their_bytes_and_types(configured, auth, tmp_path):
    xlsx, docx, png, jpeg, pdf = make_xlsx(200), make_docx(50), make_image("PNG", (320, 240)), make_image("JPEG"), \
        make_pdf(20_000)
    sent = [  # (path, body, what the outbox must show)
        ("/api/send-document", document_body(xlsx, "Cotizacion-77.xlsx", XLSX, caption="Su cotización"),
         {"type": "document", "mimeType": XLSX, "fileName": "Cotizacion-77.xlsx", "caption": "Su cotización"}, xlsx),
        ("/api/send-document", document_body(docx, "Contrato"),  # type from the content, extension added
         {"type": "document", "mimeType": DOCX, "fileName": "Contrato.docx", "caption": ""}, docx),
        ("/api/send-image", image_body(png, caption="El producto @51987654321"),
         {"type": "image", "mimeType": "image/png", "fileName": "", "caption": "El producto @51987654321"}, png),
        ("/api/send-pdf", pdf_body(pdf=pdf, fileName="B001-77.pdf"),
         {"type": "document", "mimeType": "application/pdf", "fileName": "B001-77.pdf", "caption": ""}, pdf),
        ("/api/send-document", document_body(png, "foto.png", "image/png"),  # a PNG as a document, not an image
         {"type": "document", "mimeType": "image/png", "fileName": "foto.png", "caption": ""}, png),
        ("/api/send-image", image_body(jpeg),
         {"type": "image", "mimeType": "image/jpeg", "fileName": "", "caption": ""}, jpeg),
    ]
    with serve(tmp_path, **FAST) as server:
        api = Api(server, auth)
        api.link("tienda_lima")
        refused = api.client.post("/api/send-document", json=document_body(png, "Cotizacion.xlsx", XLSX))
        assert (refused.status_code, refused.json()["error"]) == (400, "type_mismatch")
        ids = [post(api, path, body) for path, body, _, _ in sent]
        api.wait(lambda: api.statuses(ids) == {"delivered": len(ids)})
        outbox = api.outbox(sessionId="tienda_lima")
        messages = [api.message(i) for i in ids]
    assert len(outbox) == len(sent)  # the refused one never left
    for item, message, (_, _, expected, data) in zip(outbox, messages, sent):  # in the order posted
        assert {key: item[key] for key in expected} == expected
        assert (item["sha256"], item["size"]) == (hashlib.sha256(data).hexdigest(), len(data))
        assert item["waMessageId"] == message["waMessageId"]
        assert (message["type"], message["mimeType"]) == (expected["type"], expected["mimeType"])
        assert message["attempts"] == 1 and message["sentAt"] and message["deliveredAt"]
