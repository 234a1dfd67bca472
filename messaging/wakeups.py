"""Waking the dispatcher the moment a message is committed, through the channel layer (in-memory in
the embedded mode, Redis when web and worker are separate processes). A lost wake-up only costs time:
the dispatcher's sweep finds every due message anyway."""

import asyncio
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

log = logging.getLogger(__name__)

GROUP = "dispatcher.wakeup"
_pending: set[asyncio.Task] = set()  # the loop keeps only weak references to its tasks


async def announce(session_id: str) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        await layer.group_send(GROUP, {"type": "wakeup", "session_id": session_id})
    except Exception:  # Redis down: the message is committed; the sweep will find it
        log.warning("could not wake the dispatcher for %s", session_id, exc_info=True)


def announce_soon(session_id: str) -> None:
    """From the event loop, without waiting: the caller's answer does not wait for Redis."""
    task = asyncio.get_running_loop().create_task(announce(session_id))
    _pending.add(task)
    task.add_done_callback(_pending.discard)


def announce_sync(session_id: str) -> None:
    async_to_sync(announce)(session_id)
