"""Why the queue did not take a message, in the domain's words. Raised by validation (messaging.intake),
the queue writer and its storage; the HTTP adapter (messaging.asgi_send) gives each its status."""


class MessageRefused(Exception):
    """`code` is machine-readable (the API's `error`); the message is for people."""

    code = "invalid_parameters"

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidMessage(MessageRefused):
    """A field the message cannot be sent with (`code` names what: invalid_phone, not_a_pdf, ...)."""


class UnsupportedType(MessageRefused):
    """A file of a type the service does not send (DOCUMENT_MIME_TYPES, or an image that is not one)."""

    code = "unsupported_type"


class MessageTooLarge(MessageRefused):
    code = "payload_too_large"


class UnknownSession(MessageRefused):
    code = "unknown_session"

    def __init__(self, session_id: str):
        super().__init__(f"session {session_id!r} is not configured")
        self.session_id = session_id


class IdempotencyConflict(MessageRefused):
    """The Idempotency-Key already holds a message with other content."""

    code = "idempotency_conflict"


class QueueUnavailable(MessageRefused):
    """The commit did not happen (database down, too slow, or changed under the request): retry."""

    code = "database_unavailable"
