"""POST /api/send-document and /api/send-image through the service's ASGI application: what is taken, what is
refused with which status and code, and what GET /api/messages/<id> then tells."""

import hashlib
import io
import zipfile

import orjson
import pytest

from messaging.models import MessagePayload, OutgoingMessage
from tests.conftest import AsgiClient, make_pdf
from tests.files import DOCX, XLSX, b64, document_body, image_body, make_docx, make_image, make_xlsx

pytestmark = pytest.mark.django_db(transaction=True)
DOCUMENT, IMAGE = "/api/send-document", "/api/send-image"
ODT = "application/vnd.oasis.opendocument.text"


@pytest.fixture
def client(configured):
    from whatsapp_service import asgi

    return AsgiClient(asgi.application)


def post(client, path, body, auth, **headers):
    return client.post(path, content=orjson.dumps(body),
                       headers={"Content-Type": "application/json", **auth, **headers})


def assert_error(response, status, code):
    assert response.status_code == status, response.text
    body = response.json()
    assert (body["success"], body["error"]) == (False, code) and body["message"]


def accepted_row(response) -> OutgoingMessage:
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued"
    return OutgoingMessage.objects.get(message_id=response.json()["messageId"])


def make_odt() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("mimetype", ODT)  # OpenDocument's first member, stored
        archive.writestr("content.xml", "<office:document-content/>")
    return out.getvalue()


@pytest.mark.parametrize("data, file_name, mime_type", [
    (make_xlsx(), "Cotizacion-77.xlsx", XLSX), (make_docx(), "Contrato.docx", DOCX),
    (make_image("PNG"), "Producto.png", "image/png"), (make_pdf(4000), "F001-9.pdf", "application/pdf"),
    (make_odt(), "Acta.odt", ODT), (b"codigo;precio\nA1;12.50\n", "precios.csv", "text/csv"),
    (make_xlsx(), "Cotizacion.zip", "application/zip"),  # an OOXML package is a zip, and may go as one
])
def test_a_document_is_queued_with_its_bytes_type_and_name(client, auth, data, file_name, mime_type):
    row = accepted_row(post(client, DOCUMENT, document_body(data, file_name, mime_type, caption="Su pedido"), auth))
    assert (row.kind, row.mimetype, row.file_name, row.caption) == ("document", mime_type, file_name, "Su pedido")
    assert bytes(MessagePayload.objects.get(message=row).data) == data
    assert (row.size, row.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    shown = client.get(f"/api/messages/{row.message_id}", headers=auth).json()
    assert (shown["type"], shown["mimeType"], shown["fileName"]) == ("document", mime_type, file_name)


@pytest.mark.parametrize("data, file_name, mime_type", [
    (make_xlsx(), "cotizacion.xlsx", XLSX), (make_docx(), "contrato.docx", DOCX),
    (make_image("JPEG"), "foto.jpg", "image/jpeg"), (b"a,b\n1,2\n", "datos.csv", "text/csv"),
    (b"Gracias por su compra\n", "nota.txt", "text/plain"),
])
def test_without_a_mime_type_it_is_taken_from_the_content(client, auth, data, file_name, mime_type):
    row = accepted_row(post(client, DOCUMENT, document_body(data, file_name), auth))
    assert row.mimetype == mime_type


def test_the_type_is_read_from_the_bytes_not_the_name(client, auth):
    # An xlsx named .docx is an xlsx: sent with its type, and its name gets the type's extension.
    row = accepted_row(post(client, DOCUMENT, document_body(make_xlsx(), "cotizacion.docx"), auth))
    assert (row.mimetype, row.file_name) == (XLSX, "cotizacion.docx.xlsx")


def test_the_file_name_is_cleaned_as_a_pdfs_and_ends_in_its_types_extension(client, auth):
    body = document_body(make_xlsx(), "C:\\ventas\\../Cotización\x00 Lima", XLSX)
    assert accepted_row(post(client, DOCUMENT, body, auth)).file_name == "Cotización Lima.xlsx"
    body = document_body(make_image("JPEG"), "foto.JPEG", "image/jpeg")
    assert accepted_row(post(client, DOCUMENT, body, auth)).file_name == "foto.JPEG"
    assert_error(post(client, DOCUMENT, document_body(make_xlsx(), "../..", XLSX), auth), 400, "invalid_file_name")
    assert_error(post(client, DOCUMENT, document_body(make_xlsx(), "x" * 300, XLSX), auth), 400, "invalid_file_name")


@pytest.mark.parametrize("data, mime_type", [
    (make_image("PNG"), "application/pdf"),  # bytes of another type
    (make_docx(), XLSX),  # one OOXML type for another: both are zips, the package says which
    (make_xlsx(), DOCX),
    (make_pdf(), "application/zip"),
    (make_image("PNG"), "image/jpeg"),
    (make_pdf(), "text/csv"),  # text has no signature, but a PDF is not text
    (b"PK\x03\x04 not really a zip", XLSX),
])
def test_bytes_that_are_not_the_declared_type_are_refused(client, auth, data, mime_type):
    assert_error(post(client, DOCUMENT, document_body(data, "archivo", mime_type), auth), 400, "type_mismatch")
    assert not OutgoingMessage.objects.exists()


def damaged_docx() -> bytes:
    """A .docx whose [Content_Types].xml cannot be inflated: a damaged download, as a mail client leaves one."""
    data = bytearray(make_docx())
    member = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo("[Content_Types].xml")
    start = member.header_offset + 30 + len(member.filename) + len(member.extra)
    for i in range(start + 2, start + 40):
        data[i] ^= 0xFF
    return bytes(data)


def test_a_damaged_office_file_is_a_zip_and_not_its_declared_type(client, auth):
    assert_error(post(client, DOCUMENT, document_body(damaged_docx(), "Contrato", DOCX), auth), 400, "type_mismatch")
    assert not OutgoingMessage.objects.exists()
    accepted = post(client, DOCUMENT, document_body(damaged_docx(), "Contrato"), auth)  # what its bytes say
    assert accepted.status_code == 202, accepted.content
    assert (accepted_row(accepted).mimetype, accepted_row(accepted).file_name) == ("application/zip", "Contrato.zip")


@pytest.mark.parametrize("data, mime_type", [
    (b"MZ\x90\x00\x03" + bytes(200), "application/x-msdownload"),  # declared and not taken
    (b"\x7fELF\x02\x01\x01" + bytes(200), None),  # found in the content and not taken
    (make_image("GIF"), None),
    (make_image("WEBP"), None),  # an image type send-image takes, but not in the default DOCUMENT_MIME_TYPES
])
def test_a_type_not_taken_is_415(client, auth, data, mime_type):
    assert_error(post(client, DOCUMENT, document_body(data, "archivo", mime_type), auth), 415, "unsupported_type")
    assert not OutgoingMessage.objects.exists()


def test_document_mime_types_setting_decides_what_is_taken(client, auth, settings):
    settings.DOCUMENT_MIME_TYPES = ["pdf", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"]
    accepted_row(post(client, DOCUMENT, document_body(make_xlsx(), "c.xlsx"), auth))
    assert_error(post(client, DOCUMENT, document_body(make_docx(), "c.docx", DOCX), auth), 415, "unsupported_type")
    assert_error(post(client, DOCUMENT, document_body(make_image(), "p.png"), auth), 415, "unsupported_type")


def test_a_mime_type_with_parameters_and_capitals_is_its_type(client, auth):
    row = accepted_row(post(client, DOCUMENT, document_body(b"a;b\n", "x.csv", "Text/CSV; charset=utf-8"), auth))
    assert row.mimetype == "text/csv"


@pytest.mark.parametrize("fmt, mime_type", [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")])
def test_an_image_is_queued_as_an_image_of_its_type(client, auth, fmt, mime_type):
    data = make_image(fmt)
    row = accepted_row(post(client, IMAGE, image_body(data, caption="El producto"), auth))
    assert (row.kind, row.mimetype, row.file_name, row.caption) == ("image", mime_type, "", "El producto")
    assert bytes(MessagePayload.objects.get(message=row).data) == data
    shown = client.get(f"/api/messages/{row.message_id}", headers=auth).json()
    assert (shown["type"], shown["mimeType"], shown["fileName"]) == ("image", mime_type, None)


@pytest.mark.parametrize("data", [make_pdf(), make_image("GIF"), make_xlsx(), b"hola"])
def test_send_image_takes_only_jpeg_png_webp(client, auth, data):
    assert_error(post(client, IMAGE, image_body(data), auth), 415, "unsupported_type")
    assert not OutgoingMessage.objects.exists()


@pytest.mark.parametrize("path, body, field", [
    (DOCUMENT, document_body(make_xlsx(), "c.xlsx"), "fileBase64"),
    (IMAGE, image_body(make_image()), "imageBase64"),
])
def test_each_refusal_has_its_status_and_code(client, auth, path, body, field):
    for missing in ["sessionId", "to", field] + (["fileName"] if path == DOCUMENT else []):
        response = post(client, path, {k: v for k, v in body.items() if k != missing}, auth)
        assert_error(response, 400, "missing_parameters")
        assert missing in response.json()["message"]
    response = post(client, path, {**body, field: "no es base64!"}, auth)
    assert_error(response, 400, "invalid_base64")
    assert field in response.json()["message"]  # names the endpoint's own field
    assert_error(post(client, path, {**body, "to": "12"}, auth), 400, "invalid_phone")
    assert_error(post(client, path, {**body, "caption": "x" * 2000}, auth), 400, "invalid_caption")
    assert_error(client.post(path, json=body), 401, "missing_token")
    assert_error(post(client, path, body, {"Authorization": "Bearer wrong"}), 403, "invalid_token")
    assert_error(post(client, path, {**body, "sessionId": "no_such_shop"}, auth), 404, "unknown_session")
    assert_error(post(client, path, {**body, "sessionId": "../etc"}, auth), 400, "invalid_session_id")
    first = post(client, path, body, auth, **{"Idempotency-Key": "pedido-77"})
    again = post(client, path, body, auth, **{"Idempotency-Key": "pedido-77"})
    assert accepted_row(first).message_id == accepted_row(again).message_id
    other = post(client, path, {**body, "caption": "otro"}, auth, **{"Idempotency-Key": "pedido-77"})
    assert_error(other, 409, "idempotency_conflict")
    assert OutgoingMessage.objects.count() == 1


@pytest.mark.parametrize("path", [DOCUMENT, IMAGE])
def test_a_file_of_exactly_the_limit_is_taken_and_one_byte_more_is_413(client, auth, settings, path):
    png = make_image()
    settings.MAX_PDF_BYTES = len(png) + 100
    padded = png + bytes(100)  # a PNG with trailing bytes is still a PNG to libmagic
    body = document_body(padded, "p.png") if path == DOCUMENT else image_body(padded)
    accepted_row(post(client, path, body, auth))
    field = "fileBase64" if path == DOCUMENT else "imageBase64"
    response = post(client, path, {**body, field: b64(padded + b"\0")}, auth)
    assert_error(response, 413, "payload_too_large")
    assert str(settings.MAX_PDF_BYTES) in response.json()["message"]
