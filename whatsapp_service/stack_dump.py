"""`kill -USR1 <pid>` of `serve` or `runworker` writes to stderr what each of its threads and each task
on its event loop is doing: the answer to "it runs, answers, and yet nothing moves". And what the
garbage collector holds (whatsapp_service.gc_tuning): the answer to "its memory keeps growing"."""

import asyncio
import faulthandler
import gc
import signal
import sys


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
    out.write("=== end of stack dump ===\n")
    out.flush()
