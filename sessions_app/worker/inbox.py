"""The command inbox: SessionCommand rows that web processes write (sessions_app.session_commands) for
the sessions this worker holds, each claimed once, carried out, and answered in its row."""

import logging
from collections.abc import Awaitable, Callable

from django.utils import timezone

from .. import protocol, session_commands
from ..models import SessionCommand, SessionStatus, WhatsAppSession
from ..session_handle import CommandTimeout, SessionUnavailable
from .db import DatabaseThread

log = logging.getLogger(__name__)


class CommandInbox:
    def __init__(self, db: DatabaseThread, call: Callable[[str, protocol.Request, float], Awaitable[protocol.Reply]],
                 log_out: Callable[[str], Awaitable[None]], forget_slot: Callable[[str], None]):
        self._db = db
        self._call = call
        self._log_out = log_out  # unlink it (or, not running, delete its credentials) and stop it
        self._forget_slot = forget_slot

    async def claim(self, session_ids: list[str]) -> list[SessionCommand]:
        return await self._db.run(session_commands.claim_pending, session_ids)

    async def execute(self, command: SessionCommand) -> None:
        session_id, result, error_code, error = command.session_id, None, None, ""
        try:
            if command.kind == SessionCommand.Kind.PAIRING_CODE:
                phone = str((command.payload or {}).get("phone") or "")
                reply = await self._call(session_id, protocol.PairingCode(phone), 10)
                if reply.ok:
                    result = reply.result
                else:
                    error_code, error = reply.error_code or "error", reply.error or ""
            elif command.kind in (SessionCommand.Kind.LOGOUT, SessionCommand.Kind.DELETE):
                await self._log_out(session_id)
                if command.kind == SessionCommand.Kind.DELETE:
                    await self._db.run(_unconfigure, session_id)
                    self._forget_slot(session_id)
                result = {}
            else:
                error_code, error = "unknown_command", f"unknown command {command.kind!r}"
        except SessionUnavailable as exc:
            error_code, error = "session_not_running", str(exc)
        except CommandTimeout as exc:
            error_code, error = "timeout", str(exc)
        await self._db.run(session_commands.finish, command.pk, result, error_code, error)


def _unconfigure(session_id: str) -> None:
    WhatsAppSession.objects.filter(pk=session_id).update(
        in_config=False, status=SessionStatus.STOPPED, qr="", phone="", updated_at=timezone.now()
    )
