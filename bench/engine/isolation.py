"""Run plugin calls in worker processes so that a crash or a hang costs one item only.

Each worker is a separate process that builds its own plugin instances once (from an
importable target and keyword parameters) and then serves tasks one at a time over a
pipe. The parent waits on the result pipes and on the processes themselves with a
deadline per task: a worker that dies (segfault, ``os._exit``, out of memory) or
outlives its deadline is killed and replaced, and its task is reported as failed with
the reason. A task holding several items is split and retried item by item after such a
failure, so one bad item never takes its neighbours with it.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import sys
import time
import traceback
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Iterable, Iterator

log = logging.getLogger(__name__)


@dataclass
class Task:
    key: Any
    items: list[Any]
    attempt_split: bool = True


@dataclass
class TaskFailure:
    """Why a whole task failed outside the handler's control."""

    status: str  # "crash" | "timeout"
    message: str


def _worker_main(conn: Connection, setup: Callable[..., Any], setup_args: tuple, handler: Callable) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    if hasattr(os, "setpgrp"):
        os.setpgrp()  # a group of its own, so ending it also ends the processes a plugin started
        _die_with_parent()
    try:
        state = setup(*setup_args)
        conn.send(("ready", None))
    except BaseException as exc:  # report and stop; the parent turns it into an error
        conn.send(("setup_error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
        return
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        try:
            conn.send(("ok", handler(state, msg)))
        except BaseException as exc:
            # handlers catch plugin errors themselves; this is a harness error
            conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))


class WorkerSetupError(RuntimeError):
    pass


class _Worker:
    def __init__(self, ctx, setup, setup_args, handler):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, setup, setup_args, handler), daemon=True)
        self.proc.start()
        child.close()
        self.task: Task | None = None
        self.deadline = 0.0
        self.ready = False

    def kill(self) -> None:
        """End the worker and every process left in its process group (a plugin's children)."""
        try:
            if self.proc.is_alive():
                self.proc.kill()
            self.proc.join(timeout=5)
        finally:
            self.conn.close()
            _kill_group(self.proc.pid)


def _die_with_parent() -> None:
    """On Linux, have the kernel kill this worker when the parent dies (even by SIGKILL).

    A worker in its own process group no longer receives signals sent to the parent's
    group, so without this a killed run could leave a worker with a hung plugin behind.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    parent = mp.parent_process()
    if parent is not None and os.getppid() != parent.pid:  # the parent died before the call
        os._exit(1)


def _kill_group(pgid: int | None) -> None:
    """SIGKILL the process group a worker made (its id is the worker's pid), if any is left.

    The kernel does not reuse a pid while a group of that id exists, so this reaches only
    the worker's own descendants that stayed in its group.
    """
    if pgid is None or not hasattr(os, "killpg"):
        return
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _exit_reason(proc) -> str:
    code = proc.exitcode
    if code is None:
        return "worker process stopped answering"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        return f"worker process killed by signal {name}"
    return f"worker process exited with code {code}"


class IsolatedPool:
    """A pool of ``jobs`` worker processes running ``handler(state, items)``.

    ``setup(*setup_args)`` runs once in each worker and returns its state (for example
    the plugin instances). ``timeout_per_item`` seconds are allowed for each item of a
    task, plus ``startup_grace`` for the worker's first task.
    """

    def __init__(
        self,
        jobs: int,
        setup: Callable[..., Any],
        setup_args: tuple,
        handler: Callable[[Any, list[Any]], list[Any]],
        timeout_per_item: float,
        startup_grace: float = 120.0,
        start_method: str | None = None,
        keep_workers: bool = False,
    ) -> None:
        self.jobs = max(1, int(jobs))
        self.keep_workers = keep_workers  # True: workers outlive run() (close() ends them)
        self.setup, self.setup_args, self.handler = setup, setup_args, handler
        self.timeout_per_item = float(timeout_per_item)
        self.startup_grace = startup_grace
        method = start_method or os.environ.get("FINGERBENCH_START_METHOD") or "spawn"
        self.ctx = mp.get_context(method)
        self.workers: list[_Worker] = []

    def _spawn(self) -> _Worker:
        w = _Worker(self.ctx, self.setup, self.setup_args, self.handler)
        self.workers.append(w)
        return w

    def _retire(self, w: _Worker) -> None:
        w.kill()
        self.workers.remove(w)

    def run(self, tasks: Iterable[Task]) -> Iterator[tuple[Task, list[Any] | TaskFailure]]:
        """Yield (task, results) or (task, TaskFailure) as tasks finish, in any order.

        Multi-item tasks that crash or time out are split and retried one item at a time;
        only single-item failures are yielded as TaskFailure.
        """
        queue: deque[Task] = deque(tasks)
        total_setup_failures = 0
        try:
            while queue or any(w.task is not None for w in self.workers):
                while len(self.workers) < min(self.jobs, len(queue) + sum(w.task is not None for w in self.workers)):
                    self._spawn()
                now = time.monotonic()
                for w in self.workers:
                    if w.task is None and w.ready and queue:
                        t = queue.popleft()
                        w.task = t
                        w.deadline = now + self.timeout_per_item * max(1, len(t.items))
                        w.conn.send(t.items)
                    elif not w.ready and w.task is None and queue:
                        # not ready yet: reserve the task; it is sent when "ready" arrives
                        w.task = queue.popleft()
                        w.deadline = now + self.startup_grace + self.timeout_per_item * max(1, len(w.task.items))
                busy = [w for w in self.workers if w.task is not None]
                if not busy:
                    continue
                timeout = max(0.0, min(w.deadline for w in busy) - time.monotonic())
                handles = [w.conn for w in busy] + [w.proc.sentinel for w in busy]
                ready = wait(handles, timeout=timeout)
                for w in list(busy):
                    task = w.task
                    assert task is not None
                    if w.conn in ready:
                        try:
                            kind, payload = w.conn.recv()
                        except (EOFError, OSError):
                            kind, payload = "died", None
                        if kind == "ready":
                            w.ready = True
                            w.deadline = time.monotonic() + self.timeout_per_item * max(1, len(task.items))
                            w.conn.send(task.items)
                            continue
                        if kind == "setup_error":
                            total_setup_failures += 1
                            self._retire(w)
                            raise WorkerSetupError(f"a worker could not set up its plugins: {payload}")
                        if kind == "ok":
                            w.task = None
                            yield task, payload
                            continue
                        if kind == "error":
                            w.task = None
                            raise RuntimeError(f"internal error in a worker: {payload}")
                        # died: the pipe closes before the exit status is known, so wait for it
                        w.proc.join(timeout=5)
                        reason = _exit_reason(w.proc)
                    elif w.proc.sentinel in ready:
                        w.proc.join(timeout=1)
                        reason = _exit_reason(w.proc)
                    elif time.monotonic() >= w.deadline:
                        n = max(1, len(task.items))
                        reason = f"timed out after {self.timeout_per_item * n:.3g} s"
                        status = "timeout"
                        self._retire(w)
                        yield from self._fail(task, status, reason, queue)
                        continue
                    else:
                        continue
                    self._retire(w)
                    yield from self._fail(task, "crash", reason, queue)
        finally:
            if not self.keep_workers:
                self.close()
            else:  # a worker still busy (run() was abandoned) is in an unknown state
                for w in [w for w in self.workers if w.task is not None]:
                    self._retire(w)

    def _fail(self, task: Task, status: str, reason: str, queue: deque[Task]):
        if len(task.items) > 1 and task.attempt_split:
            log.warning("task %s failed (%s); retrying its %d items one by one", task.key, reason, len(task.items))
            for i, item in enumerate(task.items):
                queue.appendleft(Task((task.key, i), [item], attempt_split=False))
            return
        yield task, TaskFailure(status, reason)

    def close(self) -> None:
        for w in list(self.workers):
            try:
                if w.proc.is_alive() and w.task is None:
                    w.conn.send(None)
                    w.proc.join(timeout=2)
            except (OSError, BrokenPipeError):
                pass
            w.kill()
        self.workers.clear()
