"""The supervisor's end of a session process's pipe (sessions_app.session_handle), with a real process."""

import asyncio
import gc
import multiprocessing
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from sessions_app.protocol import SendDocument
from sessions_app.session_handle import SessionHandle, SessionUnavailable


def deaf_then_gone(conn, seconds: float) -> None:
    time.sleep(seconds)  # never reads its pipe, then ends


@pytest.mark.parametrize("attempt", range(5))
def test_a_process_that_ends_while_a_command_is_written_gives_one_clear_error_and_no_stray_one(attempt):
    ctx = multiprocessing.get_context("forkserver")  # as session_process.spawn starts them
    ours, theirs = ctx.Pipe()
    process = ctx.Process(target=deaf_then_gone, args=(theirs, 0.3), daemon=True)
    process.start()
    theirs.close()
    stray = []

    async def main():
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: stray.append((context.get("message"), context.get("exception"))))
        with ThreadPoolExecutor(1) as writers:
            handle = SessionHandle("ventas", process, ours, writers, lambda *a: None, lambda *a: None)
            # Far more than a pipe holds: the write blocks until the process is gone.
            with pytest.raises(SessionUnavailable):
                await handle.request(SendDocument("51987654321", b"%PDF-" + bytes(4 << 20)), timeout=10)
            await asyncio.wait_for(handle.exited.wait(), 10)
            await asyncio.sleep(0.05)
        gc.collect()  # an unretrieved exception is reported when its future is collected
        await asyncio.sleep(0)

    asyncio.run(main())
    assert stray == []
