"""Progress reporting: a bar on a terminal, periodic lines when the output is not one."""

from __future__ import annotations

import io
import logging

from bench.progress import ProgressLines, progress


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_lines_every_interval_with_count_rate_and_time_left(caplog):
    clock = FakeClock()
    caplog.set_level(logging.INFO, logger="fingerbench.progress")
    with ProgressLines(100, "extract classic", unit="img", interval=10.0, clock=clock) as bar:
        for _ in range(20):
            clock.now += 1.0
            bar.update(2)  # 2 images a second
    lines = [r.getMessage() for r in caplog.records]
    # 20 s of work: a line at 10 s and 20 s, then the closing line
    assert lines[0] == "extract classic: 20/100 (20 %), 2.0 img/s, 40 s left"
    assert lines[1] == "extract classic: 40/100 (40 %), 2.0 img/s, 30 s left"
    assert lines[-1] == "extract classic: 40/100 (40 %), 2.0 img/s, 30 s left"
    assert len(lines) == 3


def test_no_line_for_short_work(caplog):
    clock = FakeClock()
    caplog.set_level(logging.INFO, logger="fingerbench.progress")
    with ProgressLines(5, "compare mcc", interval=10.0, clock=clock) as bar:
        for _ in range(5):
            clock.now += 0.1
            bar.update()
    assert caplog.records == []


def test_finished_work_says_done(caplog):
    clock = FakeClock()
    caplog.set_level(logging.INFO, logger="fingerbench.progress")
    bar = ProgressLines(10, "units", interval=5.0, clock=clock)
    clock.now += 75.0
    bar.update(10)
    assert caplog.records[-1].getMessage() == "units: 10/10 (100 %), 0.1 it/s, done in 1 min 15 s"


def test_not_a_terminal_gives_lines_a_terminal_gives_a_bar():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert isinstance(progress(3, "x", None, stream=io.StringIO()), ProgressLines)
    bar = progress(3, "x", None, stream=Terminal())
    assert not isinstance(bar, ProgressLines) and not bar.disable
    bar.close()
    off = progress(3, "x", False, stream=Terminal())
    assert off.disable
    forced = progress(3, "x", True, stream=io.StringIO())
    assert not isinstance(forced, ProgressLines) and not forced.disable
    forced.close()
