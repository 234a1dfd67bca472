"""The optional per-client limit on /api/* (API_RATE_LIMIT, e.g. "600/minute"; empty: no limit).

A token bucket per client address: `N/period` allows bursts of N and N per period on average. Kept in
the process's memory: with several web processes each enforces the limit on its own share.
"""

import time

from django.conf import settings

PERIODS = {"s": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0, "h": 3600.0, "hour": 3600.0,
           "d": 86400.0, "day": 86400.0}
MAX_CLIENTS = 10_000  # above this many addresses, the ones whose bucket is full again are forgotten


def parse_rate(text: str) -> tuple[int, float] | None:
    """"600/minute" -> (600, 60.0); "" -> None. Raises ValueError on anything else."""
    text = (text or "").strip()
    if not text:
        return None
    count, _, period = text.partition("/")
    period = period.strip().lower()
    seconds = PERIODS.get(period) or PERIODS.get(period.removesuffix("s"))
    if seconds is None or not count.strip().isdigit() or int(count) < 1:
        raise ValueError(f"API_RATE_LIMIT {text!r}: use N/second, N/minute, N/hour or N/day, N >= 1")
    return int(count), seconds


class RateLimiter:
    def __init__(self, capacity: int, period: float):
        self.capacity = float(capacity)
        self.per_second = capacity / period
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, when)

    def wait_for(self, client: str, now: float | None = None) -> float:
        """0 when the request may go ahead (and counts it), else the seconds until it may."""
        now = time.monotonic() if now is None else now
        tokens, when = self._buckets.get(client, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - when) * self.per_second)
        if tokens >= 1.0:
            self._buckets[client] = (tokens - 1.0, now)
            if len(self._buckets) > MAX_CLIENTS:
                self._forget_idle(now)
            return 0.0
        self._buckets[client] = (tokens, now)
        return (1.0 - tokens) / self.per_second

    def _forget_idle(self, now: float) -> None:
        refill = self.capacity / self.per_second
        for client, (_, when) in list(self._buckets.items()):
            if now - when >= refill:
                del self._buckets[client]


_limiter: RateLimiter | None = None
_limiter_rate: str | None = None


def limiter() -> RateLimiter | None:
    """The limiter for the current API_RATE_LIMIT (rebuilt when the setting changes), None when off."""
    global _limiter, _limiter_rate
    rate = settings.API_RATE_LIMIT
    if rate != _limiter_rate:
        parsed = parse_rate(rate)
        _limiter, _limiter_rate = (RateLimiter(*parsed) if parsed else None), rate
    return _limiter


def client_address(scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"
