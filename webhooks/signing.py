"""How each webhook request is signed: the Standard Webhooks specification (standardwebhooks.com), so a
receiver verifies it with that project's library in its language and no code of ours.

    webhook-id: <the event's eventId, the same on every retry>
    webhook-timestamp: <unix seconds of this attempt>
    webhook-signature: v1,<base64 of HMAC-SHA256 over "<id>.<timestamp>.<raw body>">

keyed with the bytes that the base64 after `whsec_` in WEBHOOK_SECRET decodes to. While a secret is
rotated WEBHOOK_SECRET holds two, separated by a space, and each request carries both signatures
(space-separated), so a receiver holding either one verifies it. The secret itself never travels.
"""

import base64
import binascii
import functools
import hashlib
import hmac
import secrets
import time

PREFIX = "whsec_"
MIN_KEY_BYTES, MAX_KEY_BYTES = 24, 64
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
EVENT_HEADER = "X-Webhook-Event"  # a convenience: the event is also in the body


def new_secret() -> str:
    """A fresh secret in the form WEBHOOK_SECRET takes: whsec_ and 32 random bytes in base64."""
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


@functools.lru_cache(maxsize=4)
def keys(value: str) -> tuple[bytes, ...]:
    """The signing keys in a WEBHOOK_SECRET value: one, or two while rotating. ValueError says what is
    wrong with it without repeating any of it (it is a secret)."""
    parts = value.split()
    if not parts:
        raise ValueError("it is empty")
    if len(parts) > 2:
        raise ValueError(f"it holds {len(parts)} secrets: use one, or two separated by a space while rotating")
    found = []
    for n, part in enumerate(parts):
        which = ("the first secret", "the second secret")[n] if len(parts) == 2 else "it"
        if not part.startswith(PREFIX):
            raise ValueError(f"{which} does not start with {PREFIX}")
        try:
            key = base64.b64decode(part[len(PREFIX):], validate=True)
        except binascii.Error:
            raise ValueError(f"{which} is not {PREFIX} followed by base64") from None
        if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
            raise ValueError(f"{which} decodes to {len(key)} bytes, not {MIN_KEY_BYTES} to {MAX_KEY_BYTES}")
        found.append(key)
    return tuple(found)


def signature(key: bytes, event_id: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(key, f"{event_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret: str, body: bytes, event: str, event_id: str, now: float | None = None) -> dict:
    timestamp = int(now if now is not None else time.time())
    return {
        "Content-Type": "application/json",
        "User-Agent": "whatsapp-service-webhooks/1",
        EVENT_HEADER: event,
        ID_HEADER: event_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: " ".join(signature(key, event_id, timestamp, body) for key in keys(secret)),
    }
