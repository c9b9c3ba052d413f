"""Iterating a generator in a thread of its own, a few items ahead of its consumer."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def prefetch(items: Iterable[T], depth: int, name: str = "ecorules-reader") -> Iterator[T]:
    """Iterate ``items`` in a thread of its own, ``depth`` items ahead.

    An error in the thread is raised in the consumer; closing the returned generator (or
    dropping it) stops the thread at its next item.
    """
    out: queue.Queue = queue.Queue(depth)
    stop = threading.Event()
    done = object()

    def put(item) -> bool:
        """Hand ``item`` over unless the consumer has stopped; never blocks for good."""
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(done)
        except BaseException as error:  # noqa: BLE001 - re-raised in the consumer
            put(error)
        finally:
            # a generator stopped early is closed in the thread that ran it: one prefetching
            # in turn (a chain of these) stops its own thread now, not when collected
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = out.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


__all__ = ["prefetch"]
