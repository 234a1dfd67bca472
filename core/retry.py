"""The one retry policy: exponential backoff, capped, with "equal jitter". Session restarts, message
retries and webhook retries use it, each with its own base and cap (their settings)."""

import random


def backoff(attempt: int, base: float, cap: float) -> float:
    """base * 2^(attempt-1), capped, then between half and all of it: those failing together spread
    out, and none waits less than half its turn."""
    delay = min(cap, base * 2 ** max(0, attempt - 1))
    return delay / 2 + random.uniform(0, delay / 2)
