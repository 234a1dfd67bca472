"""The linking socket at /ws/session/<sessionId>: events of one session, as the contract shows them.

Server -> client: {"event": "status" | "qr" | "error", "data": str}; a "disconnected" status may carry
"reason", "error" (the last error, readable) and "retryInSeconds". The server closes after "connected" and
"already_connected". Right after "initializing" it sends the session's state when that is not linking (a
failed connect, a ban: link_requests.LinkState.news). Later events come from the channel layer group of
the session (sessions_app.protocol.group_name), published by the worker after its database commit.
"""

import logging
from urllib.parse import parse_qs, urlparse

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.utils.translation import gettext as _

from core.auth import bearer_from_header, invalid_token, token_matches
from core.errors import error_bytes

from .config_file import ConfigError
from .ids import InvalidSessionId, validate_session_id
from .link_requests import LinkState, request_link
from .models import SessionStatus
from .protocol import group_name

log = logging.getLogger(__name__)

# Close codes when the server cannot answer the handshake with an HTTP status (daphne, test communicator).
CLOSE_FOR_STATUS = {400: 4400, 401: 4401, 403: 4403, 404: 4404}
FORWARDED_EVENTS = {"status", "qr", "error"}
# What a status event may carry besides its data, and the type each must have.
STATUS_FIELDS = {"reason": str, "error": str, "retryInSeconds": int}


def _layer_errors() -> tuple[type[BaseException], ...]:
    """What the channel layer raises when its backing service (Redis) is gone."""
    try:
        from redis.exceptions import RedisError
    except ImportError:  # pragma: no cover - redis comes with channels_redis
        return (OSError,)
    return (OSError, RedisError)


LAYER_ERRORS = _layer_errors()


def _header(scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value
    return None


def _same_origin(scope) -> bool:
    """A browser's socket carries the page's Origin; a cookie alone must not let another site in."""
    origin = _header(scope, b"origin")
    host = _header(scope, b"host")
    if not origin:
        return False
    origin_text = origin.decode("latin-1")
    if origin_text in settings.CSRF_TRUSTED_ORIGINS:
        return True
    return host is not None and urlparse(origin_text).netloc.lower() == host.decode("latin-1").lower()


def authenticate(scope) -> tuple[int, str, str] | None:
    """None when the socket may open, else (HTTP status, error code, Spanish message)."""
    header = _header(scope, b"authorization")
    if header is not None:
        token = bearer_from_header(header)
    else:
        token = (parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token") or [None])[-1]
    if header is not None or token is not None:
        if token_matches(token):
            return None
        refused = invalid_token()
        return refused.status_code, refused.code, refused.message
    user = scope.get("user")
    if user is not None and user.is_authenticated:
        if user.is_active and user.is_staff and _same_origin(scope):
            return None
        return 403, "forbidden", _("Solo el personal del administrador puede vincular números.")
    return 401, "missing_token", _("Falta el token: use Authorization: Bearer <token>, ?token= o inicie sesión en el administrador.")


class RefusingConsumer(AsyncJsonWebsocketConsumer):
    async def refuse(self, status: int, code: str, message: str) -> None:
        """Refuse at the handshake: an HTTP answer with the API's error shape where the server can send
        one (uvicorn), a close before accept elsewhere."""
        if "websocket.http.response" in self.scope.get("extensions", {}):
            body = error_bytes(code, message)
            await self.base_send(
                {
                    "type": "websocket.http.response.start",
                    "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
                }
            )
            await self.base_send({"type": "websocket.http.response.body", "body": body})
        else:
            await self.close(code=CLOSE_FOR_STATUS[status])


class UnknownPathConsumer(RefusingConsumer):
    async def connect(self) -> None:
        await self.refuse(404, "not_found", _("No encontrado."))


def events_unavailable() -> str:
    return _("El servicio de eventos no está disponible; vuelva a conectarse en unos segundos.")


class SessionConsumer(RefusingConsumer):
    session_id: str = ""
    joined = False
    accepted = False
    closing = False
    last_sent: dict | None = None

    async def __call__(self, scope, receive, send):
        """The channel layer failing under an open socket (Redis stopped): the client hears it as an
        error event and a close it can retry after, instead of a dropped connection."""
        try:
            await super().__call__(scope, receive, send)
        except LAYER_ERRORS as exc:
            log.warning("session %s: channel layer failed: %s", self.session_id, exc)
            await self.fail(events_unavailable())

    async def connect(self) -> None:
        refusal = authenticate(self.scope)
        if refusal is not None:
            return await self.refuse(*refusal)
        try:
            self.session_id = validate_session_id(self.scope["url_route"]["kwargs"]["session_id"])
        except InvalidSessionId:
            return await self.refuse(
                400, "invalid_session_id", _("El id de sesión debe tener de 1 a 64 letras, dígitos, '_' o '-'.")
            )
        # Join before reading the state, so no event published in between is lost; a duplicate is
        # dropped by emit().
        try:
            await self.channel_layer.group_add(group_name(self.session_id), self.channel_name)
        except LAYER_ERRORS as exc:
            log.warning("session %s: cannot join its event group: %s", self.session_id, exc)
            return await self.fail(events_unavailable())
        self.joined = True
        try:
            state: LinkState = await database_sync_to_async(request_link)(self.session_id)
        except ConfigError as exc:
            log.error("session %s: cannot add it to the config file: %s", self.session_id, exc)
            return await self.fail(_("No se pudo agregar la sesión: el archivo de configuración no es válido."))
        except OSError as exc:  # disk full, read-only: the old file is intact (written atomically)
            log.error("session %s: cannot write the config file: %s", self.session_id, exc)
            return await self.fail(_("No se pudo guardar la sesión en el archivo de configuración "
                                     "(¿disco lleno?); intente de nuevo."))
        await self.accept()
        self.accepted = True
        if state.status == SessionStatus.CONNECTED:
            await self.emit("status", "already_connected")
            return await self.finish()
        await self.emit("status", "initializing")
        if state.status == SessionStatus.QR and state.qr:
            await self.emit("qr", state.qr)
        elif state.news is not None:
            # Why it is not linking (a failed connect, a ban) and when it tries again: never
            # "initializing" alone for the minutes a backoff or a ban lasts.
            await self.send_status(state.news)

    async def disconnect(self, code: int) -> None:
        # Only this socket leaves; the session keeps linking for the other watchers.
        if self.joined:
            self.joined = False
            try:
                await self.channel_layer.group_discard(group_name(self.session_id), self.channel_name)
            except LAYER_ERRORS as exc:  # Redis gone: its group entry expires by itself
                log.warning("session %s: cannot leave its event group: %s", self.session_id, exc)

    async def fail(self, message: str) -> None:
        """An error event, then a close with 1011 (server error): the client may try again."""
        if self.closing:
            return
        try:
            if not self.accepted:
                await self.accept()
                self.accepted = True
            await self.emit("error", message)
            await self.finish(1011)
        except Exception:  # the client is gone already
            log.debug("session %s: could not report a failure to the socket", self.session_id, exc_info=True)

    async def receive(self, text_data=None, bytes_data=None, **kwargs) -> None:
        """The protocol has no client messages; anything sent, JSON or not, is ignored."""

    async def session_event(self, message: dict) -> None:
        if self.closing:  # events that were already queued when the server closed
            return
        event, data = message.get("event"), message.get("data")
        if event not in FORWARDED_EVENTS or not isinstance(data, str):
            log.warning("session %s: dropped a malformed group message", self.session_id)
            return
        if event == "status":
            await self.send_status(message)
        else:
            await self.emit(event, data)
        if event == "status" and data == "connected":
            await self.finish()

    async def finish(self, code: int = 1000) -> None:
        self.closing = True
        await self.close(code=code)

    async def send_status(self, message: dict) -> None:
        """A status event with the fields it carries that are well-formed (bool is no count of seconds)."""
        extra = {key: message[key] for key, kind in STATUS_FIELDS.items()
                 if isinstance(message.get(key), kind) and not isinstance(message[key], bool) and message[key] != ""}
        await self.emit("status", message["data"], **extra)

    async def emit(self, event: str, data: str, **extra) -> None:
        payload = {"event": event, "data": data, **extra}
        if payload == self.last_sent:
            return
        self.last_sent = payload
        await self.send_json(payload)
