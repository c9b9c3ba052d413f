"""A one-line progress bar on a terminal: rows done, rows/s, ETA. Silent anywhere else."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class Progress:
    """``update(rows)`` as rows are done; ``close()`` clears the line. Redraws at most 5x/s.

    Enabled only when ``stream`` is a terminal (unless ``enabled`` says otherwise), so logs and
    pipes never receive carriage returns.
    """

    def __init__(self, total: int | None, stream: TextIO | None = None, *, enabled: bool | None = None,
                 interval: float = 0.2, width: int = 24):
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self.total = total if total and total > 0 else None
        self.interval, self.width = interval, width
        self.done = 0
        self.start = time.monotonic()
        self._last = 0.0
        self._drawn = False

    def update(self, rows: int) -> None:
        self.done += rows
        if not self.enabled:
            return
        moment = time.monotonic()
        if moment - self._last >= self.interval:
            self._last = moment
            self._draw(moment)

    def line(self, moment: float | None = None) -> str:
        elapsed = max(1e-9, (moment or time.monotonic()) - self.start)
        rate = self.done / elapsed
        text = f"{self.done:,} rows  {rate:,.0f} rows/s  {_duration(elapsed)}"
        if self.total:
            share = min(1.0, self.done / self.total)
            filled = int(share * self.width)
            bar = "#" * filled + "-" * (self.width - filled)
            left = (self.total - self.done) / rate if rate > 0 and self.done < self.total else 0.0
            text = f"[{bar}] {share:4.0%}  {text}  ETA {_duration(left)}"
        return text

    def _draw(self, moment: float) -> None:
        self.stream.write("\r" + self.line(moment) + "\033[K")
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self.enabled and self._drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()


__all__ = ["Progress"]
