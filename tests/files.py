"""Real files of the types send-document and send-image take, made as their own programs lay them out: an OOXML
package (zipfile with the parts Office writes: [Content_Types].xml, _rels, the main part), a PNG and a JPEG
by Pillow."""

import base64
import io
import zipfile

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

_RELS = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
         '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
         '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
         'officeDocument" Target="{main}"/></Relationships>')


def _ooxml(main: str, main_type: str, parts: dict[str, str]) -> bytes:
    types = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
             '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
             '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
             '<Default Extension="xml" ContentType="application/xml"/>'
             f'<Override PartName="/{main}" ContentType="{main_type}"/></Types>')
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", types)
        archive.writestr("_rels/.rels", _RELS.format(main=main))
        for name, text in parts.items():
            archive.writestr(name, text)
    return out.getvalue()


def make_xlsx(rows: int = 20) -> bytes:
    cells = "".join(f'<row r="{i}"><c r="A{i}" t="inlineStr"><is><t>Producto {i}</t></is></c>'
                    f'<c r="B{i}"><v>{i * 10.5}</v></c></row>' for i in range(1, rows + 1))
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    return _ooxml("xl/workbook.xml", XLSX + ".main+xml", {
        "xl/workbook.xml": f'<workbook {ns}><sheets><sheet name="Cotizacion" sheetId="1" r:id="rId1" '
                           'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"/>'
                           '</sheets></workbook>',
        "xl/worksheets/sheet1.xml": f"<worksheet {ns}><sheetData>{cells}</sheetData></worksheet>",
    })


def make_docx(paragraphs: int = 10) -> bytes:
    ns = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
    body = "".join(f"<w:p><w:r><w:t>Cláusula {i}: el cliente acepta.</w:t></w:r></w:p>" for i in range(paragraphs))
    return _ooxml("word/document.xml", DOCX + ".main+xml", {
        "word/document.xml": f"<w:document {ns}><w:body>{body}</w:body></w:document>",
    })


def make_image(fmt: str = "PNG", size: tuple[int, int] = (64, 48)) -> bytes:
    from PIL import Image

    image = Image.new("RGB", size)
    image.putdata([((x * 4) % 256, (y * 5) % 256, 120) for y in range(size[1]) for x in range(size[0])])
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def document_body(data: bytes, file_name: str, mime_type: str | None = None, session_id: str = "tienda_lima",
                  to: str = "51987654321", **extra) -> dict:
    body = {"sessionId": session_id, "to": to, "fileBase64": b64(data), "fileName": file_name, **extra}
    if mime_type is not None:
        body["mimeType"] = mime_type
    return body


def image_body(data: bytes, session_id: str = "tienda_lima", to: str = "51987654321", **extra) -> dict:
    return {"sessionId": session_id, "to": to, "imageBase64": b64(data), **extra}
