"""Progress reporting for long runs (an observer: solvers call it, never the reverse)."""
from __future__ import annotations

import sys
import time


class ProgressBar:
    """A one-line progress bar on stderr, redrawn at most 5 times a second.

    On a terminal it redraws in place; otherwise (logs, CI) it prints a line per 10 %.
    """

    def __init__(self, label: str, total: int, stream=None, enabled: bool = True):
        self.label, self.total = label, max(int(total), 1)
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.perf_counter()
        self._last = 0.0
        self._decile = -1

    def __call__(self, done: int, info: str = "") -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        frac = min(done / self.total, 1.0)
        if self.tty:
            if now - self._last < 0.2 and done < self.total:
                return
            self._last = now
            bar = "#" * int(30 * frac)
            eta = (now - self.start) * (1 - frac) / frac if frac > 0 else float("nan")
            self.stream.write(f"\r{self.label} [{bar:<30}] {100 * frac:5.1f}%  eta {eta:6.1f}s {info}   ")
            self.stream.flush()
        else:
            dec = int(10 * frac)
            if dec > self._decile:
                self._decile = dec
                self.stream.write(f"{self.label}: {100 * frac:3.0f}% ({now - self.start:.1f}s) {info}\n")
                self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()


class StepClock:
    """A progress observer recording the wall time of each step (for benchmarks)."""

    def __init__(self):
        self.times: list[float] = []
        self.last = time.perf_counter()

    def __call__(self, done: int, info: str = "") -> None:
        now = time.perf_counter()
        self.times.append(now - self.last)
        self.last = now
