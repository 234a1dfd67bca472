"""How each webhook request is signed, and how a receiver checks it.

The signed message is `<timestamp>.<body>`: the unix time of the attempt in seconds, a dot, and the
exact bytes of the body. HMAC-SHA256 with WEBHOOK_SECRET; sent as

    X-Webhook-Timestamp: 1700000000
    X-Webhook-Signature: sha256=<hex digest>

A receiver recomputes the digest over the timestamp header, a dot and the raw body, compares in
constant time, and rejects timestamps too far from its clock (replays). The secret itself never
travels.
"""

import hashlib
import hmac
import time

TIMESTAMP_HEADER = "X-Webhook-Timestamp"
SIGNATURE_HEADER = "X-Webhook-Signature"
EVENT_ID_HEADER = "X-Webhook-Id"
EVENT_HEADER = "X-Webhook-Event"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signed_headers(secret: str, body: bytes, event: str, event_id: str, now: float | None = None) -> dict:
    timestamp = int(now if now is not None else time.time())
    return {
        "Content-Type": "application/json",
        "User-Agent": "whatsapp-service-webhooks/1",
        EVENT_HEADER: event,
        EVENT_ID_HEADER: event_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }


def verify(secret: str, body: bytes, timestamp: str, signature_header: str, tolerance_seconds: int = 300,
           now: float | None = None) -> bool:
    """What a receiver does (the README shows the same in Python and JavaScript)."""
    try:
        sent_at = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - sent_at) > tolerance_seconds:
        return False
    return hmac.compare_digest(signature(secret, sent_at, body), signature_header or "")
