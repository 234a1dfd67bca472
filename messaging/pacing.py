"""Per-number send pacing (anti-ban): a minimum interval with random jitter, and an optional hourly cap."""

import asyncio
import random
import time
from collections import deque


class Pacer:
    def __init__(self, min_interval: float, jitter: float, hourly_cap: int, recent: list[float] = ()):
        self.min_interval = min_interval
        self.jitter = jitter
        self.hourly_cap = hourly_cap
        self._next_allowed = 0.0
        self._recent: deque[float] = deque(recent)  # time.time() of sends within the last hour

    def delay(self, now_mono: float | None = None, now_wall: float | None = None) -> float:
        """Seconds to wait before the next send may start."""
        now_mono = time.monotonic() if now_mono is None else now_mono
        now_wall = time.time() if now_wall is None else now_wall
        wait = max(0.0, self._next_allowed - now_mono)
        if self.hourly_cap > 0:
            while self._recent and self._recent[0] <= now_wall - 3600:
                self._recent.popleft()
            if len(self._recent) >= self.hourly_cap:
                wait = max(wait, self._recent[0] + 3600 - now_wall)
        return wait

    async def wait_turn(self) -> None:
        while (wait := self.delay()) > 0:
            await asyncio.sleep(wait)

    def sent(self) -> None:
        self._next_allowed = time.monotonic() + self.min_interval + random.uniform(0, self.jitter)
        if self.hourly_cap > 0:
            self._recent.append(time.time())
