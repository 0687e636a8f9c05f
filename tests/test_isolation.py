"""The isolated worker pool: crashes and hangs cost one item, results are complete."""

from __future__ import annotations

import os
import signal
import time

from bench.isolation import IsolatedPool, Task, TaskFailure


def _setup(offset):
    return offset


def _handler(offset, items):
    out = []
    for x in items:
        if x == "crash":
            os.kill(os.getpid(), signal.SIGSEGV)
        if x == "exit":
            os._exit(3)
        if x == "hang":
            time.sleep(60)
        out.append(x + offset)
    return out


def test_pool_isolates_crashes_hangs_and_exits():
    items = [1, 2, "crash", 4, "hang", 6, "exit", 8]
    tasks = [Task("a", items[:4]), Task("b", items[4:])]
    pool = IsolatedPool(2, _setup, (100,), _handler, timeout_per_item=1.0)
    got = {}
    for task, result in pool.run(tasks):
        if isinstance(result, TaskFailure):
            got[task.items[0]] = result.status + ":" + result.message
        else:
            for item, r in zip(task.items, result):
                got[item] = r
    assert got[1] == 101 and got[2] == 102 and got[4] == 104 and got[6] == 106 and got[8] == 108
    assert got["crash"].startswith("crash:") and "SIGSEGV" in got["crash"]
    assert got["hang"].startswith("timeout:")
    assert got["exit"] == "crash:worker process exited with code 3"
    assert pool.workers == []
