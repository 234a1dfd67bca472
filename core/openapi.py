"""The shared parts of the API's OpenAPI description (drf-spectacular): the bearer scheme, the error answers
with the codes each one can carry, the rules of the values many operations take, and the links between
operations. The views describe themselves with these, so that the schema says what is served."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

SESSION_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
SESSION_ID = {"type": "string", "pattern": SESSION_ID_PATTERN, "minLength": 1, "maxLength": 64,
              "example": "tienda_lima"}
# A number with its country code, valid for libphonenumber; '+', spaces, dashes, brackets and dots are
# tolerated between the digits. "phone" names that rule (a pattern cannot say which numbers exist).
PHONE = {"type": "string", "format": "phone", "minLength": 8, "example": "51987654321"}

_B64 = "[A-Za-z0-9+/_-]"
_WS = "[ \\t\\n\\r\\x0b\\x0c]*"


def _base64_pattern(head: tuple[str, ...] = ()) -> str:
    """What messaging.intake.decode_base64 takes, as a pattern: base64 (standard or URL-safe, whitespace
    anywhere, padding optional) whose first characters match `head` (one regex class each), after an
    optional data: URI prefix. The count of characters decides the padding allowed: none after 4k, up to
    two after 4k+2, one after 4k+3; 4k+1 is no base64."""
    char = _WS + _B64
    prefix = "(?:[dD][aA][tT][aA]:[A-Za-z0-9_.+/-]*;[bB][aA][sS][eE]64,)?"
    quad = f"(?:{char}{char}{char}{char})*"
    pad = _WS + "="
    padding = {0: "", 2: f"(?:{pad}){{0,2}}", 3: f"(?:{pad})?"}
    tails = [char * rest + padding[(len(head) + rest) % 4] for rest in range(4) if (len(head) + rest) % 4 != 1]
    if not head:
        tails.remove("")  # at least one character: an empty value is a missing one
    return f"^{prefix}{''.join(_WS + c for c in head)}{quad}(?:{'|'.join(tails)}){_WS}$"


def _pdf_base64_pattern() -> str:
    """decode_pdf's rule: base64 of bytes that start with "%PDF-" ("JVBERi" and one of 0-3)."""
    return _base64_pattern((*"JVBERi", "[0-3]"))


PDF_BASE64 = {"type": "string", "pattern": _pdf_base64_pattern(), "example": "JVBERi0xLjQKJSVFT0YK"}
# Base64 of a file whose bytes are of a type the endpoint takes (messaging.file_types): no pattern can say
# what bytes are, so a format names that rule, as "phone" does for numbers.
DOCUMENT_BASE64 = {"type": "string", "format": "document-base64", "minLength": 4}
IMAGE_BASE64 = {"type": "string", "format": "image-base64", "minLength": 4}


class StaticTokenScheme(OpenApiAuthenticationExtension):
    target_class = "core.auth.StaticTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "API_STATIC_TOKEN: `Authorization: Bearer <token>`. Missing: 401; wrong: 403."}


def path_session_id(description: str = "The session's id.") -> OpenApiParameter:
    return OpenApiParameter("session_id", SESSION_ID, OpenApiParameter.PATH, required=True, description=description)


_DESCRIPTIONS = {
    400: "A parameter is missing or invalid; `error` says which rule it broke.",
    401: "No `Authorization: Bearer <token>` header.",
    403: "The token is not API_STATIC_TOKEN.",
    404: "Not found.",
    409: "The request conflicts with the state of the session or with an earlier request.",
    413: "The body (or the decoded file) is larger than the service takes.",
    415: "The file's type is not accepted.",
    429: "Too many requests from this client (API_RATE_LIMIT); `Retry-After` says when to try again.",
    502: "The session tried and failed (WhatsApp refused or the session's process failed).",
    503: "The database cannot be reached right now; retry (`Retry-After`).",
    504: "No worker answered in time (SESSION_COMMAND_WAIT_SECONDS); retry.",
}
# What every protected operation can answer, whatever it does.
_EVERY_OPERATION = {401: ["missing_token"], 403: ["invalid_token"], 429: ["rate_limited"],
                    503: ["database_unavailable"]}


def error_schema(codes) -> dict:
    """core.errors' body, with the codes this answer can carry as the enum of `error`."""
    return {
        "type": "object",
        "required": ["success", "error", "message"],
        "properties": {
            "success": {"type": "boolean", "description": "Always false."},
            "error": {"type": "string", "enum": sorted(set(codes)), "description": "Machine-readable code."},
            "message": {"type": "string", "description": "What happened, for a person (Spanish by default)."},
        },
    }


def error_responses(codes: dict[int, list[str]], *, takes_body: bool = False) -> dict[int, OpenApiResponse]:
    """The error answers of one operation: `codes` (status -> the codes it can carry) and those every
    operation can give (401, 403, 429, 503; 413 and 400 invalid_json for one that takes a JSON body)."""
    merged: dict[int, set[str]] = {status: set(c) for status, c in _EVERY_OPERATION.items()}
    if takes_body:
        merged.setdefault(400, set()).add("invalid_json")
        merged.setdefault(413, set()).add("payload_too_large")
    for status, c in codes.items():
        merged.setdefault(status, set()).update(c)
    return {status: OpenApiResponse(error_schema(merged[status]), description=_DESCRIPTIONS[status])
            for status in sorted(merged)}


# Where an answer names what another operation takes (schemathesis' stateful phase follows these too).
LINKS = {
    ("send_pdf", "202"): {"GetMessage": ("get_message", {"message_id": "$response.body#/messageId"})},
    ("send_text", "202"): {"GetMessage": ("get_message", {"message_id": "$response.body#/messageId"})},
    ("send_document", "202"): {"GetMessage": ("get_message", {"message_id": "$response.body#/messageId"})},
    ("send_image", "202"): {"GetMessage": ("get_message", {"message_id": "$response.body#/messageId"})},
    ("list_sessions", "200"): {"GetSession": ("get_session", {"session_id": "$response.body#/0/sessionId"})},
    ("get_session", "200"): {
        name: (operation, {"session_id": "$response.body#/sessionId"})
        for name, operation in (("GetSessionQr", "get_session_qr"), ("RequestPairingCode", "request_pairing_code"),
                                ("LogoutSession", "logout_session"), ("DeleteSession", "delete_session"))
    },
}


def add_links(result, generator, request, public):
    """drf-spectacular postprocessing hook: LINKS into the answers of the operations that exist."""
    operations = {op.get("operationId") for item in result.get("paths", {}).values() for op in item.values()}
    for item in result.get("paths", {}).values():
        for operation in item.values():
            for status, response in operation.get("responses", {}).items():
                links = LINKS.get((operation.get("operationId"), status), {})
                links = {name: {"operationId": target, "parameters": parameters}
                         for name, (target, parameters) in links.items() if target in operations}
                if links:
                    response["links"] = links
    return result


def schema_field(schema: dict, field_class=None, **kwargs):
    """A serializer field that the schema shows as `schema` (a pattern or a format DRF cannot say)."""
    from drf_spectacular.utils import extend_schema_field
    from rest_framework import serializers

    base = field_class or serializers.CharField
    return extend_schema_field(schema)(type(f"Schema{base.__name__}", (base,), {}))(**kwargs)


def char_class(keep, *, negate: bool = False) -> str:
    """A regex class of every code point `keep` accepts, as literal ranges (no \\p{...}: neither ECMA-262
    without the u flag nor Python's re has it). For rules such as "a character that is not a control"."""
    ranges, start = [], None
    for point in range(0x110000):
        if 0xD800 <= point <= 0xDFFF:  # surrogates: no character of a JSON string on their own
            kept = False
        else:
            kept = keep(chr(point))
        if kept and start is None:
            start = point
        elif not kept and start is not None:
            ranges.append((start, point - 1))
            start = None
    if start is not None:
        ranges.append((start, 0x10FFFF))

    def literal(point: int) -> str:
        ch = chr(point)
        return "\\" + ch if ch in "\\]^-[" else (f"\\x{point:02x}" if point < 0x20 or point == 0x7F else ch)

    body = "".join(literal(a) if a == b else f"{literal(a)}-{literal(b)}" for a, b in ranges)
    return f"[{'^' if negate else ''}{body}]"
