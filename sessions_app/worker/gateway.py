"""What the rest of the service may use of a running worker (the dispatcher sends through it)."""

from typing import Protocol

from .. import protocol


class SessionGateway(Protocol):
    worker_id: str  # host:pid:token, also the owner of its session leases

    def is_running(self, session_id: str) -> bool:
        """Whether a session process runs for it here now."""

    def fence(self, session_id: str) -> tuple[str, int] | None:
        """(worker id, epoch) while this worker runs the session under its current lease, else None."""

    async def call(self, session_id: str, command: protocol.Request, timeout: float) -> protocol.Reply:
        """Send a command to the session's process and return its reply.
        Raises SessionUnavailable when no process runs for it, CommandTimeout when no reply comes."""
