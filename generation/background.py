"""Run a blocking `generate` call in a thread and iterate what its streamer receives.

transformers' `generate` pushes to a streamer (`put` / `end`) and only returns at the end; the UI
wants a generator it can pull after every step, and a stop that really ends the thread. DiffusionGemma,
which runs its own generate loop, uses it for that (the AR side runs a loop of its own in the caller's
thread: autoregressive.py says why).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator


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
