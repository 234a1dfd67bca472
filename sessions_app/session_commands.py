"""SessionCommand rows: how a web process asks the worker running a session for something (pairing
code, logout, delete) and waits for the answer. Web and worker may be separate processes or hosts, so
the database is the mailbox: the web writes a pending row, the worker claims it (running) and finishes
it (done with a result, or failed with an error code)."""

import time

from django.conf import settings
from django.utils import timezone

from core.claims import claim

from .models import CommandState, SessionCommand

POLL_SECONDS = 0.1


class CommandFailed(Exception):
    """`code` is machine-readable: worker_unavailable, worker_timeout, session_not_running, timeout,
    or the client's own (not_waiting_for_link, ...)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def request(session_id: str, kind: str, payload: dict | None = None, wait: float | None = None) -> dict:
    """Ask the worker and wait for its result (blocking: call it from a synchronous view)."""
    command = SessionCommand.objects.create(session_id=session_id, kind=kind, payload=payload or {})
    deadline = time.monotonic() + (settings.SESSION_COMMAND_WAIT_SECONDS if wait is None else wait)
    while True:
        row = SessionCommand.objects.filter(pk=command.pk).values("state", "result", "error").get()
        if row["state"] == CommandState.DONE:
            return row["result"] or {}
        if row["state"] == CommandState.FAILED:
            raise CommandFailed((row["result"] or {}).get("error_code") or "error", row["error"])
        if time.monotonic() >= deadline:
            break
        time.sleep(POLL_SECONDS)
    # Withdrawn unless a worker took it meanwhile: nobody should act on it after its asker gave up.
    withdrawn = SessionCommand.objects.filter(pk=command.pk, state=CommandState.PENDING).update(
        state=CommandState.FAILED, error="no worker answered", done_at=timezone.now()
    )
    if withdrawn:
        raise CommandFailed("worker_unavailable", "no worker took the command")
    raise CommandFailed("worker_timeout", "the worker did not finish the command in time")


def claim_pending(session_ids: list[str]) -> list[SessionCommand]:
    """The pending commands for these sessions, oldest first, each claimed by this worker only."""
    if not session_ids:
        return []
    pending = SessionCommand.objects.filter(state=CommandState.PENDING, session_id__in=session_ids).order_by("id")
    return claim(pending, take={"state": CommandState.RUNNING}, limit=100)


def finish(command_id: int, result: dict | None = None, error_code: str | None = None, error: str = "") -> None:
    if error_code is None:
        values = {"state": CommandState.DONE, "result": result or {}}
    else:
        values = {"state": CommandState.FAILED, "result": {"error_code": error_code}, "error": error}
    SessionCommand.objects.filter(pk=command_id).update(done_at=timezone.now(), **values)
