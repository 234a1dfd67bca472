"""Garbage collection for a long-running service process.

Django, DRF, Channels and the rest leave a few hundred thousand objects that live as long as the
process. CPython runs a full collection only when the objects promoted to the oldest generation since
the last one reach a quarter of those long-lived ones, so with that heap the reference cycles that
requests and sockets leave behind (a closed WebSocket, with its compressor, is one) pile up for
minutes before anything frees them: memory that looks like a leak under steady traffic.
`settle()`, called once the process has started, collects what start-up left and moves the rest to
the permanent generation (gc.freeze): full collections then weigh only what was made since, come
often, and cost little.
"""

import gc
import logging

log = logging.getLogger(__name__)


def settle() -> None:
    gc.collect()
    gc.freeze()
    log.debug("gc: %d start-up objects frozen", gc.get_freeze_count())
