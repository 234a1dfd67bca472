"""The one retry policy (core.retry): doubling waits with jitter, capped, so those failing together spread out."""

from core.retry import backoff


def test_waits_double_with_jitter_up_to_the_cap():
    for attempt, full in [(1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (9, 300.0), (50, 300.0)]:
        waits = [backoff(attempt, base=2.0, cap=300.0) for _ in range(200)]
        assert all(full / 2 <= w <= full for w in waits)
        assert len(set(waits)) > 100  # jitter: not the same wait for every session


def test_a_first_attempt_never_waits_less_than_half_the_base():
    assert min(backoff(1, base=1.0, cap=10.0) for _ in range(500)) >= 0.5
