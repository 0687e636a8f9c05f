"""The isolated worker pool: crashes and hangs cost one item, results are complete."""

from __future__ import annotations

import os
import signal
import time

from bench.engine.isolation import IsolatedPool, Task, TaskFailure


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


def _spawn_child_then(pid_file, items):
    import subprocess
    import sys

    out = []
    for x in items:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        with open(pid_file, "a") as f:
            f.write(f"{child.pid}\n")
        if x == "hang":
            time.sleep(120)
        out.append(x)
    return out


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting to be reaped is not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def test_a_timed_out_worker_takes_the_processes_it_started_with_it(tmp_path):
    if not os.path.isdir("/proc") or not hasattr(os, "killpg"):
        import pytest

        pytest.skip("needs /proc and process groups")
    pid_file = tmp_path / "children.txt"
    pool = IsolatedPool(1, _setup, (str(pid_file),), _spawn_child_then, timeout_per_item=1.0)
    results = {task.items[0]: r for task, r in pool.run([Task("a", ["hang"]), Task("b", ["fine"])])}
    assert isinstance(results["hang"], TaskFailure) and results["hang"].status == "timeout"
    assert results["fine"] == ["fine"]
    pids = [int(line) for line in pid_file.read_text().split()]
    assert len(pids) == 2
    deadline = time.monotonic() + 5
    while any(_running(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_running(p) for p in pids)
