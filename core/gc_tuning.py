"""Garbage collection, and the C heap, for a long-running service process.

Django, DRF, Channels and the rest leave a few hundred thousand objects that live as long as the
process. CPython runs a full collection only when the objects promoted to the oldest generation since
the last one reach a quarter of those long-lived ones, so with that heap the reference cycles that
requests and sockets leave behind (a closed WebSocket, with its compressor, is one) pile up for
minutes before anything frees them: memory that looks like a leak under steady traffic.
`settle()`, called once the process has started, collects what start-up left and moves the rest to
the permanent generation (gc.freeze): full collections then weigh only what was made since, come
often, and cost little.

What is freed goes back to glibc's heap, which keeps it: under steady traffic (request bodies, PDFs,
rows) the heap's free space grew 5.5 -> 12.2 MB in 10 minutes while its memory in use stayed at 28 MB
(bench/mixed_load.py, the SIGUSR1 dump's malloc line). `settle()` also has the loop hand the free pages
back to the system every HEAP_TRIM_SECONDS (malloc_trim: a few milliseconds); a session process, which
has no loop, calls `trim_heap()` from its heartbeat thread.
"""

import asyncio
import ctypes
import gc
import logging

log = logging.getLogger(__name__)

HEAP_TRIM_SECONDS = 60.0


def settle(loop: asyncio.AbstractEventLoop) -> None:
    gc.collect()
    gc.freeze()
    log.debug("gc: %d start-up objects frozen", gc.get_freeze_count())
    _trim_heap_every(loop, HEAP_TRIM_SECONDS)


def trim_heap() -> None:
    """Hand the C heap's free pages back to the system (glibc; elsewhere nothing to do)."""
    if _malloc_trim is not None:
        _malloc_trim(0)


def _trim_heap_every(loop: asyncio.AbstractEventLoop, seconds: float) -> None:
    def trim() -> None:
        trim_heap()
        loop.call_later(seconds, trim)

    loop.call_later(seconds, trim)


try:
    _malloc_trim = ctypes.CDLL(None).malloc_trim
    _malloc_trim.argtypes, _malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
except AttributeError:  # not glibc
    _malloc_trim = None
