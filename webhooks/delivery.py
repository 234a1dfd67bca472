"""The deliverer: posts the outbox's events to their receivers, signed. It runs as a process of its
own (`manage.py deliver_webhooks`, started and watched by the worker, see webhooks.process) at a lower
CPU priority, so a receiver that is slow, down or busy never takes time from sending.

One task per receiver URL posts that URL's due events one after another, in the order they were
written (webhooks.outbox keeps a subject's events in order across retries). 2xx is delivered; any
other 3xx or 4xx than 408 and 429 is final (`dead`). A network error, a timeout, 408, 429 or 5xx
means the receiver is in trouble: that URL is left alone for an exponential backoff with jitter (at
least its Retry-After), then its oldest event is tried again, and so on; a receiver that is down
costs one attempt per backoff, not one per event, so it adds almost no work beside the sending.
Events whose retry window (from when they were written) ends are `dead`, visible in the admin, which
can redeliver them. Delivery is at least once: a worker that dies
mid-post leaves a lease that expires, and the event goes out again (receivers dedupe by its webhook-id header).
"""

import asyncio
import dataclasses
import logging
import os
import signal
import socket
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.db import connection

from core.db_threads import in_db_thread
from core.retry import backoff

from . import outbox, signing

log = logging.getLogger(__name__)

BATCH = 50
GATHER_SECONDS = 0.2
_current = None  # this process's Deliverer, or the worker's DelivererProcess (webhooks.process)


def nudge() -> None:
    """Something was written to the outbox (after its commit): look now rather than at the next poll."""
    target = _current
    if target is not None:
        target.nudge()


def set_current(target) -> None:
    global _current
    _current = target


def _host(url: str) -> str:
    """What the logs say of a URL: never its user, password, path or query (they may hold secrets)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{':%d' % parts.port if parts.port else ''}"


class Deliverer:
    def __init__(self) -> None:
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._wake: asyncio.Event | None = None
        self._stopping = False
        self._drains: dict[str, asyncio.Task] = {}
        self._db = ThreadPoolExecutor(1, thread_name_prefix="webhooks-db")

    # -- lifecycle -------------------------------------------------------------------------------
    def run(self, nudges: int | None = None) -> None:
        """Deliver until SIGTERM/SIGINT (or end of file on the `nudges` descriptor, whose every byte
        means: look now). This is `manage.py deliver_webhooks`, which the worker runs as its child."""
        global _current
        _current = self
        try:
            asyncio.run(self._main(nudges))
        finally:
            _current = None
            self._db.submit(connection.close).result()
            self._db.shutdown()

    def nudge(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _stop(self) -> None:
        self._stopping = True
        self.nudge()

    async def _main(self, nudges: int | None) -> None:
        loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stop)
        if nudges is not None:
            os.set_blocking(nudges, False)
            loop.add_reader(nudges, self._read_nudges, nudges)
        log.info("webhooks: deliverer started as %s", self.owner)
        timeout = httpx.Timeout(settings.WEBHOOK_TIMEOUT_SECONDS)
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as http:
            self._http = http
            while not self._stopping:
                self._wake.clear()
                wait = settings.WEBHOOK_POLL_SECONDS
                try:
                    await asyncio.sleep(GATHER_SECONDS)  # events come in bursts: fewer, larger batches
                    due = await self._in_db(outbox.urls_with_due_events)
                    if due:
                        due -= await self._in_db(outbox.urls_backing_off)
                    for url in due:
                        task = self._drains.get(url)
                        if task is None or task.done():
                            self._drains[url] = asyncio.create_task(self._drain(url))
                    wait = await self._in_db(outbox.next_due_in, settings.WEBHOOK_POLL_SECONDS)
                    dead = await self._in_db(outbox.close_windows)
                    if dead:
                        log.warning("webhooks: %d event(s) dead: their retry window ended", dead)
                except Exception:
                    log.exception("webhooks: reading the outbox failed; retrying")
                # An event due but waiting behind its subject's retry must not make this spin.
                try:
                    await asyncio.wait_for(self._wake.wait(), max(wait, min(0.5, settings.WEBHOOK_POLL_SECONDS)))
                except TimeoutError:
                    pass
            running = [t for t in self._drains.values() if not t.done()]
            if running:
                await asyncio.wait(running, timeout=settings.WEBHOOK_TIMEOUT_SECONDS + 1)
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    def _read_nudges(self, fd: int) -> None:
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return
        if not data:  # the worker is gone
            asyncio.get_running_loop().remove_reader(fd)
            self._stop()
        else:
            self.nudge()

    async def _drain(self, url: str) -> None:
        lease = BATCH * (settings.WEBHOOK_TIMEOUT_SECONDS + 1) + 30
        while not self._stopping:
            try:
                batch = await self._in_db(outbox.claim, url, self.owner, BATCH, lease)
            except Exception:
                log.exception("webhooks: claiming events for %s failed", _host(url))
                return
            if not batch:
                return
            outcomes, in_trouble = [], False
            for item in batch:
                if self._stopping or in_trouble:
                    outcomes.append(outbox.Outcome(item.pk, None, "", attempted=False))
                    continue
                outcome = await self._post(item)
                if not outcome.delivered and not outcome.permanent:
                    # The receiver is in trouble: this event waits its backoff, and the URL's other
                    # events wait behind it (outbox.urls_backing_off).
                    delay = max(backoff(item.attempts + 1, settings.WEBHOOK_RETRY_BASE_SECONDS,
                                        settings.WEBHOOK_RETRY_MAX_SECONDS),
                                min(outcome.retry_in, settings.WEBHOOK_RETRY_MAX_SECONDS))
                    outcome = dataclasses.replace(outcome, retry_in=delay)
                    in_trouble = True
                outcomes.append(outcome)
            try:
                dead = await self._in_db(outbox.record, {c.pk: c for c in batch}, outcomes)
            except Exception:
                log.exception("webhooks: recording deliveries to %s failed (their leases expire)", _host(url))
                return
            failed = [o for o in outcomes if o.attempted and not o.delivered]
            if failed:
                log.warning("webhooks: %s answered %s; %d event(s) now dead", _host(url), failed[0].error[:200], len(dead))
            if in_trouble:
                return

    async def _post(self, item: outbox.Claimed) -> outbox.Outcome:
        headers = signing.signed_headers(settings.WEBHOOK_SECRET, item.body, item.event, item.event_id)
        try:
            response = await self._http.post(item.url, content=item.body, headers=headers)
        except httpx.TimeoutException:
            return outbox.Outcome(item.pk, None, "timeout")
        except httpx.HTTPError as exc:
            return outbox.Outcome(item.pk, None, f"{type(exc).__name__}: {exc}")
        code = response.status_code
        if 200 <= code < 300:
            return outbox.Outcome(item.pk, code, "", delivered=True)
        return outbox.Outcome(
            item.pk, code, f"HTTP {code}: {response.text[:300]}",
            retry_in=_retry_after(response), permanent=300 <= code < 500 and code not in (408, 429),
        )

    async def _in_db(self, fn, *args):
        return await in_db_thread(self._db, fn, *args)


def _retry_after(response: httpx.Response) -> float:
    value = response.headers.get("retry-after", "")
    return float(value) if value.strip().isdigit() else 0.0
