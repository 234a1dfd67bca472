"""QR codes on the worker's terminal (PRINT_QR), for linking without the web page."""

import sys


def print_qr(session_id: str, data: str) -> None:
    import segno

    print(f"\nSesión {session_id}: escanee este QR en WhatsApp > Dispositivos vinculados", flush=True)
    segno.make(data, error="l", micro=False).terminal(compact=True)
    sys.stdout.flush()
