"""Model work in threads of its own: a blocking `generate` iterated through its streamer, and any call or
iteration in a thread that ends with it.

transformers' `generate` pushes to a streamer (`put` / `end`) and only returns at the end; the UI
wants a generator it can pull after every step, and a stop that really ends the thread. DiffusionGemma,
which runs its own generate loop, uses `iterate_in_thread` for that (the AR side runs a loop of its own
in the caller's thread: autoregressive.py says why).

`call_in_own_thread` / `iterate_in_own_thread` are for the page, on CPU: libgomp, torch's OpenMP,
throttles the spin-waiting of every thread team once more threads hold a team than there are CPUs, and
a thread holds its team while it lives. So a long-lived thread that has run torch (a web server's worker
after a steps sweep, a panel that loaded its model and waits for its turn) slows every later run in
other threads (an AR step beside such an idle thread took over half as long again as alone, and as long as
alone once it had ended). A thread that ends takes its team with it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import closing
from queue import Queue


class Halt:
    """Stop condition for the generate thread: the caller's stop signal, or the caller left early.

    Leaving early never sets the caller's own event (it may be shared with another stream)."""

    def __init__(self, stop: threading.Event | None) -> None:
        self.stop = stop
        self.abandoned = threading.Event()

    def __call__(self) -> bool:
        return self.abandoned.is_set() or (self.stop is not None and self.stop.is_set())

    @property
    def requested(self) -> bool:
        """True if the caller's stop signal (not an early exit) ended the run."""
        return self.stop is not None and self.stop.is_set()


def iterate_in_thread(generate: Callable[[], None], streamer: Iterable, end: Callable[[], None],
                      halt: Halt, name: str) -> Iterator:
    """Run `generate` (which feeds `streamer`) in a thread; yield what the streamer receives.

    `end` closes the streamer when `generate` returns or fails; `generate` must watch `halt`.
    Leaving the loop early sets `halt` and waits for the thread, so no thread outlives its stream;
    an exception raised by `generate` is re-raised here, in the caller's thread.
    """
    errors: list[BaseException] = []

    def run() -> None:
        try:
            generate()
        except BaseException as error:  # re-raised in the caller's thread
            errors.append(error)
        finally:
            end()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        yield from streamer
    finally:
        halt.abandoned.set()
        thread.join()
    if errors:
        raise errors[0]


def call_in_own_thread(call: Callable[[], object], name: str) -> object:
    """call() in a thread that ends with it; its result, or its exception raised here."""
    def result() -> Generator:
        yield call()

    [value] = iterate_in_own_thread(result, name)
    return value


def iterate_in_own_thread(items: Callable[[], Generator], name: str) -> Iterator:
    """Iterate the generator `items()` in a thread that ends with it, yielding each item here. Leaving
    early closes it after the item in progress; an exception it raises is raised here."""
    queue, end, halt = Queue(), object(), Halt(None)

    def produce() -> None:
        with closing(items()) as iterator:
            for item in iterator:
                queue.put(item)
                if halt():
                    return

    yield from iterate_in_thread(produce, iter(queue.get, end), lambda: queue.put(end), halt, name)
