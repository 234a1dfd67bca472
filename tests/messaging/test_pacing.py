from messaging.pacing import Pacer


def test_minimum_interval_with_jitter_between_sends():
    pacer = Pacer(min_interval=2.0, jitter=1.0, hourly_cap=0)
    assert pacer.delay() == 0
    pacer.sent()
    waits = [pacer.delay() for _ in range(3)]
    assert all(1.9 <= w <= 3.0 for w in waits)


def test_hourly_cap_holds_the_next_send_until_the_oldest_leaves_the_hour():
    now = 1_000_000.0
    pacer = Pacer(min_interval=0, jitter=0, hourly_cap=3, recent=[now - 3500, now - 100, now - 50])
    assert abs(pacer.delay(now_mono=0, now_wall=now) - 100) < 1e-6  # the first leaves the window in 100 s
    assert pacer.delay(now_mono=0, now_wall=now + 101) == 0


def test_no_cap_and_no_interval_never_waits():
    pacer = Pacer(0, 0, 0)
    for _ in range(100):
        pacer.sent()
    assert pacer.delay() == 0
