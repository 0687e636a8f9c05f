"""Progress of long work: a tqdm bar on a terminal, periodic log lines elsewhere.

A run whose output goes to a file or a CI log gets no bar (bars are unreadable there), so
it would print nothing for minutes. :func:`progress` gives the same ``update(n)`` context
manager in both cases: on a terminal a tqdm bar, otherwise a line every ``interval``
seconds with the items done, the rate and the time left, logged at INFO level.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Callable

log = logging.getLogger("fingerbench.progress")

#: Seconds between two progress lines when the output is not a terminal.
LINE_INTERVAL = 10.0


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class ProgressLines:
    """Counts items and logs ``desc: done/total (pct), rate, time left`` every ``interval`` seconds."""

    def __init__(self, total: int, desc: str, unit: str = "it", interval: float = LINE_INTERVAL,
                 clock: Callable[[], float] = time.monotonic, logger: logging.Logger = log) -> None:
        self.total = int(total)
        self.desc = desc
        self.unit = unit
        self.interval = interval
        self.n = 0
        self.lines = 0
        self._clock = clock
        self._log = logger
        self._start = clock()
        self._last = self._start
        self._n_last = 0

    def update(self, n: int = 1) -> None:
        self.n += n
        now = self._clock()
        if now - self._last >= self.interval:
            self._log.info("%s", self.line(now))

    def line(self, now: float | None = None, overall: bool = False) -> str:
        """The progress line; the rate is that since the previous line (so a slow start, such as
        workers warming up, does not distort the time left), the overall rate once done."""
        now = self._clock() if now is None else now
        finished = self.total and self.n >= self.total
        since, done_since = (self._start, self.n) if finished or overall else (self._last, self.n - self._n_last)
        rate = done_since / max(now - since, 1e-9)
        self._last, self._n_last = now, self.n
        text = f"{self.desc}: {self.n}/{self.total}"
        if self.total:
            text += f" ({100.0 * self.n / self.total:.0f} %)"
        text += f", {rate:.1f} {self.unit}/s"
        if finished:
            text += f", done in {_duration(now - self._start)}"
        elif self.total:
            text += f", {_duration((self.total - self.n) / rate)} left" if rate > 0 else ", time left unknown"
        self.lines += 1
        return text

    def close(self) -> None:
        # a closing line only for work long enough to have reported progress, and news since
        if self.lines and self.n != self._n_last:
            self._log.info("%s", self.line(overall=True))

    def __enter__(self) -> "ProgressLines":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def progress(total: int, desc: str, enabled: bool | None = None, unit: str = "it",
             interval: float = LINE_INTERVAL, stream: Any = None) -> Any:
    """A context manager with ``update(n)`` for ``total`` items of work called ``desc``.

    ``enabled`` None: a tqdm bar when ``stream`` (default stderr) is a terminal, progress lines
    otherwise; True: always a bar; False: nothing.
    """
    from tqdm import tqdm

    stream = sys.stderr if stream is None else stream
    if enabled is False:
        return tqdm(total=total, disable=True)
    if enabled is None and not _is_terminal(stream):
        return ProgressLines(total, desc, unit=unit, interval=interval)
    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, leave=False, file=stream)


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
