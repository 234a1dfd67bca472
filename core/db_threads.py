"""Database work off the event loop, on threads that live as long as the process.

Django refuses database calls on a thread running an event loop, and closes stale connections only
at the end of a request: a long-lived thread calls close_old_connections() before each piece of
work, so a connection past CONN_MAX_AGE or broken by a database outage is replaced, not reused.
"""

import asyncio
from concurrent.futures import Executor
from functools import partial

from django.db import close_old_connections


def with_fresh_connection(fn, *args):
    """fn(*args) on this thread, after its stale connection (if any) is closed."""
    close_old_connections()
    return fn(*args)


async def in_db_thread(executor: Executor | None, fn, *args):
    """Await fn(*args) run on `executor` (None: the loop's default one) with a fresh connection."""
    return await asyncio.get_running_loop().run_in_executor(executor, partial(with_fresh_connection, fn, *args))
