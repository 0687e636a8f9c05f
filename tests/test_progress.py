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
    # 20 s of work: a line at 10 s and 20 s; nothing new to say when it closes
    assert lines == ["extract classic: 20/100 (20 %), 2.0 img/s, 40 s left",
                     "extract classic: 40/100 (40 %), 2.0 img/s, 30 s left"]


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


def test_time_left_follows_the_current_rate_not_a_slow_start(caplog):
    clock = FakeClock()
    caplog.set_level(logging.INFO, logger="fingerbench.progress")
    bar = ProgressLines(1000, "compare mcc", interval=10.0, clock=clock)
    clock.now += 10.0
    bar.update(1)  # warming up: 1 item in the first 10 s
    clock.now += 10.0
    bar.update(100)  # then 10 items a second
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "compare mcc: 1/1000 (0 %), 0.1 it/s, 2 h 46 min left"
    assert lines[1] == "compare mcc: 101/1000 (10 %), 10.0 it/s, 1 min 30 s left"
    clock.now += 5.0
    bar.update(50)
    bar.close()  # stopped early (an error): the overall rate
    assert caplog.records[-1].getMessage() == "compare mcc: 151/1000 (15 %), 6.0 it/s, 2 min 21 s left"
