"""A dict bounded in time and in size, for what a long-running process remembers per recipient.

Every entry lives `ttl` seconds, and past `max_entries` the oldest go first. Each send to a new number
adds an entry to such a memory (the dispatcher's "is this number on WhatsApp", a session's JID per
number), so one that only ever grew would hold every recipient of the day, hundreds of thousands for
a busy sales system, until the process ends.
"""

import time
from collections import OrderedDict
from typing import Any, Hashable


class TtlCache:
    def __init__(self, ttl: float, max_entries: int, clock=time.monotonic):
        self.ttl, self.max_entries, self._clock = ttl, max_entries, clock
        self._entries: OrderedDict[Hashable, tuple[Any, float]] = OrderedDict()  # oldest first

    def get(self, key: Hashable) -> Any | None:
        """The value put under `key`, or None when there is none or it is older than `ttl`."""
        entry = self._entries.get(key)
        if entry is None or entry[1] <= self._clock():
            return None
        return entry[0]

    def put(self, key: Hashable, value: Any) -> None:
        now = self._clock()
        self._entries.pop(key, None)
        self._entries[key] = (value, now + self.ttl)
        # One ttl for all: insertion order is expiry order, so the expired are at the front.
        while self._entries:
            _, expires = next(iter(self._entries.values()))
            if expires > now and len(self._entries) <= self.max_entries:
                break
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
