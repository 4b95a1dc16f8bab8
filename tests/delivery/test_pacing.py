"""The window of calls in flight: halves on a 429 (once per round), grows back by about
one call per round of successes, pauses for Retry-After, never passes the share."""

from app.delivery.pacing import Window


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_starts_at_the_share_and_never_passes_it():
    window = Window(25)
    assert window.limit == 25
    for _ in range(100):
        window.succeeded()
    assert window.limit == 25


def test_a_429_halves_once_per_round_and_successes_grow_it_back():
    clock = Clock()
    window = Window(40, clock=clock)
    started = clock.now
    clock.now += 0.3
    window.throttled(started, None)
    assert window.limit == 20
    window.throttled(started, None)  # begun before the decrease: already counted
    assert window.limit == 20
    window.throttled(clock.now, None)  # begun after it: Twilio still says too many
    assert window.limit == 10
    for _ in range(21):  # two rounds of about 10 successes: one more call
        window.succeeded()
    assert window.limit == 11
    for _ in range(2000):
        window.succeeded()
    assert window.limit == 40


def test_retry_after_pauses_new_calls():
    clock = Clock()
    window = Window(10, clock=clock)
    window.throttled(clock.now, 2.0)
    assert window.limit == 0
    clock.now += 2.01
    assert window.limit == 5


def test_never_below_one_call():
    clock = Clock()
    window = Window(4, clock=clock)
    for _ in range(10):
        clock.now += 1
        window.throttled(clock.now, None)
    assert window.limit == 1


def test_a_new_share_and_the_per_process_bound():
    window = Window(50, bound=8)
    assert window.limit == 8
    window.resize(4)
    assert window.limit == 4
    window.resize(30)  # at its cap before: filled at once
    assert window.limit == 8
    unbounded = Window(0)
    assert unbounded.limit == 0  # no share yet: no calls
    unbounded.resize(25)
    assert unbounded.limit == 25


def test_a_first_share_starts_at_the_other_senders_window():
    window = Window(0)
    window.resize(10, senders=2, peers_window=4)  # the others found Twilio's limit
    assert window.limit == 4
    alone = Window(0)
    alone.resize(10, senders=1)
    assert alone.limit == 10
