"""Why the queue did not take a message, in the domain's words. Raised by validation (messaging.intake);
the HTTP adapter (messaging.asgi_send) gives each its status."""


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


class MessageTooLarge(MessageRefused):
    code = "payload_too_large"
