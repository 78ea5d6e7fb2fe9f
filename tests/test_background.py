"""generation/background.py: a blocking generate in a thread, iterated through its streamer."""

import threading
from queue import Queue

import pytest

from generation.background import Halt, iterate_in_thread


class ListStreamer:
    """The smallest streamer: put / end feed a queue the caller iterates (None marks the end)."""

    def __init__(self):
        self.queue = Queue()

    def put(self, item):
        self.queue.put(item)

    def end(self):
        self.queue.put(None)

    def __iter__(self):
        while (item := self.queue.get()) is not None:
            yield item


def run(generate_items, stop=None, name="unmask-test-generate"):
    streamer, halt = ListStreamer(), Halt(stop)

    def generate():
        for item in generate_items(halt):
            streamer.put(item)

    return iterate_in_thread(generate, streamer, streamer.end, halt, name=name), halt


def alive(name="unmask-test-generate"):
    return [t for t in threading.enumerate() if t.name == name]


def test_yields_what_the_streamer_receives_in_order():
    items, _ = run(lambda halt: range(5))
    assert list(items) == [0, 1, 2, 3, 4]
    assert alive() == []


def test_an_error_in_generate_is_raised_in_the_callers_thread():
    def failing(halt):
        yield 1
        raise ValueError("bad weights")

    items, _ = run(failing)
    with pytest.raises(ValueError, match="bad weights"):
        list(items)
    assert alive() == []


def test_leaving_early_halts_generate_without_setting_the_callers_stop():
    stop = threading.Event()

    def endless(halt):
        n = 0
        while not halt():
            n += 1
            yield n

    items, halt = run(endless, stop)
    assert next(items) == 1
    items.close()
    assert halt() and not halt.requested and not stop.is_set()
    assert alive() == []


def test_the_callers_stop_is_what_requested_means():
    stop = threading.Event()
    stop.set()
    items, halt = run(lambda halt: iter(()), stop)
    assert list(items) == [] and halt.requested


def test_call_in_own_thread_returns_or_raises_here_and_the_thread_ends():
    from generation.background import call_in_own_thread

    assert call_in_own_thread(lambda: threading.current_thread().name, name="unmask-test-call") == "unmask-test-call"
    with pytest.raises(ZeroDivisionError):
        call_in_own_thread(lambda: 1 / 0, name="unmask-test-call")
    assert alive("unmask-test-call") == []


def test_iterate_in_own_thread_yields_here_and_closes_the_generator_when_left_early():
    from generation.background import iterate_in_own_thread

    closed = threading.Event()

    def items():
        try:
            for i in range(100):
                yield i, threading.current_thread().name
        finally:
            closed.set()

    stream = iterate_in_own_thread(items, name="unmask-test-items")
    assert next(stream) == (0, "unmask-test-items")
    stream.close()
    assert closed.is_set() and alive("unmask-test-items") == []
    assert [i for i, _ in iterate_in_own_thread(lambda: items(), name="unmask-test-items")] == list(range(100))
