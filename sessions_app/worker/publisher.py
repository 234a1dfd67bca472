"""The worker's channel-layer messages, sent one after the other: a listener sees them in the order
they happened. Published from the database thread after each commit, sent from the loop."""

import asyncio
import logging

from channels.layers import get_channel_layer

from .. import protocol

log = logging.getLogger(__name__)


class Publisher:
    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self._queue: asyncio.Queue[tuple[str, dict]] = asyncio.Queue()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = self._loop.create_task(self._send_forever(), name="session-events")

    def publish(self, session_id: str, message: dict) -> None:
        """Thread-safe (session_state calls it on the database thread, after the commit)."""
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, (session_id, message))
        except RuntimeError:  # the loop is closed: nobody is left to tell
            pass

    async def close(self, timeout: float = 5.0) -> None:
        """After the last status changes reached their listeners (or `timeout`)."""
        try:
            await asyncio.wait_for(self._queue.join(), timeout)
        except TimeoutError:
            log.warning("supervisor: some session events could not be published")
        if self._task is not None:
            self._task.cancel()

    async def _send_forever(self) -> None:
        layer = get_channel_layer()
        while True:
            session_id, message = await self._queue.get()
            try:
                await layer.group_send(protocol.group_name(session_id), message)
            except Exception:  # the row is the truth; a listener that missed this reads it on (re)connect
                log.exception("session %s: could not publish %s", session_id, message.get("event"))
            finally:
                self._queue.task_done()
