"""A pending WhatsApp QR as an SVG image (segno, no network, no browser library)."""

import io

import segno


def qr_svg(data: str, scale: int = 6) -> bytes:
    """The code with the 4-module quiet zone scanners expect, on white so any page background works."""
    buffer = io.BytesIO()
    segno.make(data, error="l", micro=False).save(
        buffer, kind="svg", scale=scale, border=4, light="#fff", dark="#000", xmldecl=False, title="QR"
    )
    return buffer.getvalue()
