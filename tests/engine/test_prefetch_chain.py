"""engine/_prefetch.py: a prefetch stopped early closes the generator it ran, in its own
thread, so that a chain of prefetches (the case spill's reading and grouping threads) stops
every thread of it at once, and the source's clean-up runs."""

from __future__ import annotations

import threading
import time

from ecorules.engine._prefetch import prefetch


def _alive(name: str) -> bool:
    return any(t.name == name and t.is_alive() for t in threading.enumerate())


def test_closing_the_last_of_a_chain_stops_every_thread_and_closes_the_source():
    closed = []

    def source():
        try:
            yield from range(1_000_000)
        finally:
            closed.append(threading.current_thread().name)

    def doubled(items):
        for item in items:
            yield 2 * item

    # (nothing else holds the inner prefetch: closed with the generator reading it)
    outer = prefetch(doubled(prefetch(source(), depth=1, name="chain-inner")), depth=2, name="chain-outer")
    assert [next(outer) for _ in range(3)] == [0, 2, 4]
    outer.close()
    deadline = time.monotonic() + 5
    while (_alive("chain-inner") or _alive("chain-outer")) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _alive("chain-outer") and not _alive("chain-inner")
    assert closed == ["chain-inner"]  # the source closed in the thread that ran it


def test_an_error_in_the_first_of_a_chain_reaches_the_consumer():
    def source():
        yield 1
        raise ValueError("the second item cannot be read")

    outer = prefetch((x for x in prefetch(source(), depth=1, name="chain-inner-2")), depth=1, name="chain-outer-2")
    assert next(outer) == 1
    try:
        next(outer)
    except ValueError as error:
        assert "cannot be read" in str(error)
    else:
        raise AssertionError("the error was lost")
