"""PDF bytes for the benches: a receipt-like document, or noise.

`real_like(size)` is built as real PDFs are: text object dictionaries between deflated content streams,
an xref table and a trailer, so it compresses as real receipts do (by ~3%: its streams are deflated
already) and a database that tries to compress it does the work real documents cost. `noise(size)` is
`%PDF-1.4` and random bytes: nothing to find, so compressors give up at once (the benches' older input).
"""

import os
import random
import zlib

WORDS = ("factura boleta total subtotal igv cliente ruc fecha importe cantidad descripcion precio unitario "
         "gracias por su compra tienda lima soles pago tarjeta efectivo vuelto serie numero").split()


def real_like(size: int, seed: int = 7) -> bytes:
    rng = random.Random(seed)
    objects: list[bytes] = []
    header = b"%PDF-1.5\n%\xd0\xd4\xc5\xd8\n"

    def tail_room(count: int) -> int:  # the xref table and the trailer
        return 20 * (count + 1) + 80

    while True:
        number = len(objects) + 1
        if number % 4 == 1:  # a page, a font, an annotation: dictionaries only
            obj = (b"%d 0 obj\n<<\n/Type /Page\n/Parent 2 0 R\n/Resources %d 0 R\n/Contents %d 0 R\n"
                   b"/MediaBox [0 0 595.276 841.89]\n>>\nendobj\n" % (number, number + 1, number + 2))
        else:  # a content stream, deflated as PDF writers do
            text = " ".join(rng.choice(WORDS) + str(rng.randrange(10_000)) for _ in range(rng.randrange(100, 600)))
            stream = zlib.compress(b"BT /F1 9 Tf " + text.encode() + b" ET", 9)
            obj = (b"%d 0 obj\n<<\n/Length %d\n/Filter /FlateDecode\n>>\nstream\n" % (number, len(stream))
                   + stream + b"\nendstream\nendobj\n")
        if len(header) + sum(map(len, objects)) + len(obj) + tail_room(number) > size:
            break
        objects.append(obj)
    body = header + b"".join(objects)
    padding = size - len(body) - tail_room(len(objects))
    body += b"%" + b" " * (padding - 2) + b"\n" if padding >= 2 else b""
    offsets, at = [], len(header)
    for obj in objects:
        offsets.append(at)
        at += len(obj)
    xref = b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    xref += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    trailer = b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, len(body))
    document = body + xref + trailer
    return document + b"\n" * (size - len(document))


def noise(size: int) -> bytes:
    return b"%PDF-1.4\n" + os.urandom(size - 9)
