"""What a file is, by its bytes: the types send-document and send-image take, and whether content is what its
declared type says. Pure: no database, no HTTP; messaging.intake turns the answers into MessageRefused.

"Matches" per type (docs in README, "Sending any document"):
- pdf: starts with %PDF- (as send-pdf checks it).
- jpeg, png, webp: libmagic names that very type.
- docx, xlsx, pptx: a zip archive whose [Content_Types].xml declares the type's main part (an OOXML file's
  own statement of what it is; libmagic says application/zip or the OOXML type depending on its version).
- odt, ods: a zip archive whose `mimetype` member holds the type (OpenDocument's own statement).
- zip: any zip archive (an OOXML or OpenDocument file is one, and may be sent as such).
- csv, txt and other text/*: no signature; the content must be text (libmagic says text/*).
"""

import io
import zipfile
import zlib

import magic

PDF = "application/pdf"
ZIP = "application/zip"
OOXML = {  # type -> the content type its [Content_Types].xml gives the main part
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document":
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation":
        "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml",
}
ODF = {"application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.spreadsheet"}
IMAGES = {"image/jpeg", "image/png", "image/webp"}
# The names DOCUMENT_MIME_TYPES may use for a type, and the extension a file of that type ends in.
SHORT_NAMES = {
    "pdf": PDF, "docx": next(iter(OOXML)), "xlsx": list(OOXML)[1], "pptx": list(OOXML)[2],
    "odt": "application/vnd.oasis.opendocument.text", "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "csv": "text/csv", "txt": "text/plain", "zip": ZIP, "jpeg": "image/jpeg", "jpg": "image/jpeg",
    "png": "image/png", "webp": "image/webp",
}
EXTENSIONS = {PDF: (".pdf",), list(OOXML)[0]: (".docx",), list(OOXML)[1]: (".xlsx",), list(OOXML)[2]: (".pptx",),
              "application/vnd.oasis.opendocument.text": (".odt",),
              "application/vnd.oasis.opendocument.spreadsheet": (".ods",), "text/csv": (".csv",),
              "text/plain": (".txt",), ZIP: (".zip",), "image/jpeg": (".jpg", ".jpeg"), "image/png": (".png",),
              "image/webp": (".webp",)}
_MAGIC_PREFIX = 8192  # enough for libmagic's image and text tests; containers are read by zipfile


def mime_type_of(name: str) -> str:
    """A DOCUMENT_MIME_TYPES entry ("xlsx" or a full type) as its full type, lower case."""
    name = name.strip().lower()
    return SHORT_NAMES.get(name, name)


def normalize(value: str) -> str:
    """A declared type without parameters ("text/csv; charset=utf-8" -> "text/csv")."""
    return value.split(";", 1)[0].strip().lower()


def detect(data: bytes, file_name: str = "") -> str:
    """The type the content is, as precisely as its bytes say (an OOXML or OpenDocument file as such, not as
    a zip). Text has no signature: it is text/csv when its name ends in .csv, else text/plain."""
    if data.startswith(b"%PDF-"):
        return PDF
    container = _container_type(data)
    if container is not None:
        return container
    found = magic.from_buffer(data[:_MAGIC_PREFIX], mime=True)
    if found.startswith("text/"):
        return "text/csv" if file_name.lower().endswith(".csv") else "text/plain"
    return found


def matches(data: bytes, mime_type: str) -> bool:
    """Whether the content is what `mime_type` says (module docstring)."""
    if mime_type == PDF:
        return data.startswith(b"%PDF-")
    if mime_type == ZIP:
        return _zip(data) is not None
    if mime_type in OOXML or mime_type in ODF:
        return _container_type(data) == mime_type
    found = magic.from_buffer(data[:_MAGIC_PREFIX], mime=True)
    if mime_type.startswith("text/"):
        return found.startswith("text/")
    return found == mime_type


def _zip(data: bytes) -> zipfile.ZipFile | None:
    if not data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return None
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zlib.error, ValueError, OSError):
        return None


def _container_type(data: bytes) -> str | None:
    """ZIP, or the OOXML / OpenDocument type the archive says it is; None for what is not a zip."""
    archive = _zip(data)
    if archive is None:
        return None
    with archive:
        names = set(archive.namelist())
        try:
            if "[Content_Types].xml" in names:
                with archive.open("[Content_Types].xml") as member:  # read bounded: no zip bomb
                    types = member.read(1 << 20)
                for mime_type, main_part in OOXML.items():
                    if main_part.encode() in types:
                        return mime_type
            if "mimetype" in names:
                with archive.open("mimetype") as member:
                    declared = member.read(200).decode("ascii", "replace").strip()
                if declared in ODF:
                    return declared
        # zlib.error: damaged compressed data; RuntimeError: an encrypted member; NotImplementedError: an
        # unknown compression method.
        except (zipfile.BadZipFile, zlib.error, ValueError, OSError, NotImplementedError, RuntimeError):
            pass  # a member that cannot be read: a zip, no more
    return ZIP
