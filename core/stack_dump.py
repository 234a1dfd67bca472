"""`kill -USR1 <pid>` of `serve` or `runworker` writes to stderr what each of its threads and each task
on its event loop is doing: the answer to "it runs, answers, and yet nothing moves". And what the
garbage collector holds (core.gc_tuning), what Python's and C's allocators hold and what SQLite
holds: the answer to "its memory keeps growing", and to where. Started with PYTHONTRACEMALLOC=1, it also
says which lines of code hold more memory than at the first dump (slow: for finding a leak, not for
production)."""

import asyncio
import ctypes
import ctypes.util
import faulthandler
import functools
import gc
import signal
import sys
import tracemalloc


def install(loop: asyncio.AbstractEventLoop) -> None:
    """On the running loop (its signal handler runs on the loop, between callbacks)."""
    loop.add_signal_handler(signal.SIGUSR1, dump, loop)


def dump(loop: asyncio.AbstractEventLoop) -> None:
    out = sys.stderr
    out.write("=== stack dump (SIGUSR1): threads ===\n")
    out.flush()
    faulthandler.dump_traceback(file=out, all_threads=True)
    tasks = sorted(asyncio.all_tasks(loop), key=lambda t: t.get_name())
    out.write(f"=== {len(tasks)} asyncio task(s) ===\n")
    for task in tasks:
        out.write(f"--- {task.get_name()}: {task.get_coro()!r}\n")
        task.print_stack(file=out)
    collections = "/".join(str(g["collections"]) for g in gc.get_stats())
    out.write(f"=== gc: {gc.get_freeze_count()} start-up objects frozen, {len(gc.get_objects())} tracked, "
              f"collections by generation {collections} ===\n")
    out.write(f"=== malloc: {malloc_memory()}; python: {sys.getallocatedblocks()} small blocks ===\n")
    out.write(f"=== sqlite: {sqlite_memory()} ===\n")
    if tracemalloc.is_tracing():
        write_allocations_grown(out)
    out.write("=== end of stack dump ===\n")
    out.flush()


SQLITE_STATUS_MEMORY_USED, SQLITE_STATUS_PAGECACHE_OVERFLOW = 0, 2


@functools.cache
def sqlite_status():
    """sqlite3_status64 of the SQLite library Python's sqlite3 links: the system libsqlite3, so loading it by
    name finds the same library, and the same counters. None where there is none to find."""
    name = ctypes.util.find_library("sqlite3")
    if name is None:
        return None
    try:
        status = ctypes.CDLL(name).sqlite3_status64
    except (OSError, AttributeError):
        return None
    status.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_int64), ctypes.POINTER(ctypes.c_int64), ctypes.c_int]
    return status


def sqlite_memory() -> str:
    """What SQLite has allocated in this process, all connections together."""
    status = sqlite_status()
    if status is None:
        return "memory unknown (no libsqlite3 with sqlite3_status64)"

    def mb(op: int) -> tuple[float, float]:
        current, highest = ctypes.c_int64(), ctypes.c_int64()
        status(op, ctypes.byref(current), ctypes.byref(highest), 0)
        return current.value / 2**20, highest.value / 2**20

    used, most = mb(SQLITE_STATUS_MEMORY_USED)
    cache, _ = mb(SQLITE_STATUS_PAGECACHE_OVERFLOW)
    return f"{used:.1f} MB in use ({cache:.1f} MB of it page cache), at most {most:.1f} MB"


class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


try:
    _mallinfo2 = ctypes.CDLL(None).mallinfo2
    _mallinfo2.restype = MallInfo2
except AttributeError:  # not glibc, or older than 2.33
    _mallinfo2 = None


def malloc_memory() -> str:
    """glibc's heap: what is in use, what it keeps free (freed but not given back: fragmentation), and what
    it mapped apart for large blocks. Python's own small objects live in its arenas, counted apart."""
    if _mallinfo2 is None:
        return "unknown (no glibc mallinfo2)"
    info = _mallinfo2()
    mb = 2**20
    return (f"{info.uordblks / mb:.1f} MB in use, {info.fordblks / mb:.1f} MB free in the heap, "
            f"{info.hblkhd / mb:.1f} MB mapped apart")


_first_snapshot: tracemalloc.Snapshot | None = None


def write_allocations_grown(out, lines: int = 25) -> None:
    """The lines of code whose live allocations grew most since the first dump (since start, the first time):
    what a leak keeps adds up dump after dump, what is merely in flight does not."""
    global _first_snapshot
    snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    if _first_snapshot is None:
        _first_snapshot = snapshot
        stats, since = snapshot.statistics("lineno"), "start"
    else:
        stats, since = snapshot.compare_to(_first_snapshot, "lineno"), "the first dump"
    out.write(f"=== allocations grown most since {since} (tracemalloc) ===\n")
    for stat in stats[:lines]:
        out.write(f"{stat}\n")
