"""The worker's database thread: all its database work on one thread, in order, so a session's
changes are saved in the order they happened."""

import logging
from concurrent.futures import ThreadPoolExecutor

from core.db_threads import in_db_thread, with_fresh_connection

log = logging.getLogger(__name__)


class DatabaseThread:
    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="supervisor-db")

    async def run(self, fn, *args):
        """Await fn(*args) on the database thread."""
        return await in_db_thread(self._executor, fn, *args)

    def submit(self, fn, *args) -> None:
        """fn(*args) on the database thread, for work nobody awaits: its failure is logged."""
        self._executor.submit(_quietly, fn, *args)

    def shutdown(self) -> None:
        self._executor.shutdown()


def _quietly(fn, *args) -> None:
    try:
        with_fresh_connection(fn, *args)
    except Exception:
        log.exception("supervisor: %s failed", getattr(fn, "__name__", fn))
