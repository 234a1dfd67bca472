"""What a long-running process remembers per recipient stays bounded (core.ttl_cache)."""

from core.ttl_cache import TtlCache


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_an_entry_is_remembered_for_its_ttl_and_then_forgotten():
    clock = Clock()
    cache = TtlCache(ttl=60, max_entries=100, clock=clock)
    cache.put(("ventas", "51987654321"), False)
    clock.now += 59.9
    assert cache.get(("ventas", "51987654321")) is False
    clock.now += 0.1
    assert cache.get(("ventas", "51987654321")) is None


def test_a_day_of_new_recipients_keeps_only_the_unexpired_ones():
    clock = Clock()
    cache = TtlCache(ttl=60, max_entries=1_000_000, clock=clock)
    for n in range(10_000):  # one new number a second
        cache.put(("ventas", f"519{n:08d}"), True)
        clock.now += 1
    assert len(cache) == 60
    assert cache.get(("ventas", f"519{9_999:08d}")) is True
    assert cache.get(("ventas", f"519{0:08d}")) is None


def test_past_its_size_the_oldest_go_first_and_a_refreshed_entry_counts_as_new():
    clock = Clock()
    cache = TtlCache(ttl=86400, max_entries=3, clock=clock)
    for number in ("a", "b", "c"):
        cache.put(number, number.upper())
        clock.now += 1
    cache.put("a", "A2")  # seen again: now the newest
    cache.put("d", "D")
    assert len(cache) == 3
    assert [cache.get(k) for k in "abcd"] == ["A2", None, "C", "D"]
