"""Schemathesis hooks for this API's schema (SCHEMATHESIS_HOOKS=tests.schemathesis_hooks): the values of
the formats no pattern can say: `phone` (a number libphonenumber knows as valid, digits with country code,
'+', spaces and dashes tolerated), `document-base64` and `image-base64` (a file whose bytes are its type)."""

import phonenumbers
import schemathesis
from hypothesis import strategies as st

from core.phones import phone_digits
from messaging.file_types import PDF
from tests.files import DOCX, XLSX, b64, make_docx, make_image, make_xlsx

VALID_NUMBERS = sorted({
    digits
    for region in phonenumbers.SUPPORTED_REGIONS
    for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE)
    if (number := phonenumbers.example_number_for_type(region, kind)) is not None
    and phone_digits(digits := f"{number.country_code}{number.national_number}") == digits
})


def _written(digits: str, plus: bool, separator: str) -> str:
    if separator:
        digits = separator.join(digits[i:i + 3] for i in range(0, len(digits), 3))
    return ("+" if plus else "") + digits


schemathesis.openapi.format(
    "phone",
    st.builds(_written, st.sampled_from(VALID_NUMBERS), st.booleans(), st.sampled_from(["", "", " ", "-"])),
)


# document-base64 and image-base64: real files of the types the endpoints take (tests.files), in base64.
DOCUMENTS = {b64(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n%%EOF\n"): PDF, b64(make_xlsx(5)): XLSX, b64(make_docx(3)): DOCX,
             b64(b"Codigo,Precio\nA1,10\n"): "text/csv", b64(make_image("PNG")): "image/png"}
IMAGES = [b64(make_image("PNG")), b64(make_image("JPEG"))]
schemathesis.openapi.format("document-base64", st.sampled_from(sorted(DOCUMENTS)))
schemathesis.openapi.format("image-base64", st.sampled_from(IMAGES))
schemathesis.openapi.format("document-mime-type", st.sampled_from(sorted(set(DOCUMENTS.values()))))


@schemathesis.hook
def map_body(context, body):
    """A declared mimeType must be the file's own (400 type_mismatch otherwise), a rule between two fields
    that no schema can say: a drawn document with a drawn valid type gets its own type."""
    if isinstance(body, dict) and body.get("fileBase64") in DOCUMENTS and isinstance(body.get("mimeType"), str):
        body["mimeType"] = DOCUMENTS[body["fileBase64"]]
    return body
