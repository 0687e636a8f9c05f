"""Execution backends: where the work units of a run are computed.

Every kind of work a run does -- extracting templates, comparing the pairs of a 1:1
protocol, searching a 1:N gallery shard -- is a :class:`Job`: a small, picklable
description that builds a worker's state once per process (``setup``: the plugin
instances) and then computes units (``handle(state, items)``: one result per item). A
backend takes a job and a list of units (:class:`Task`) and yields ``(task, results)``
as units finish, in any order; the caller stores each result as it arrives, so stored
results do not depend on the backend (only timings do).

Two policies for a unit that is lost (its process crashed, or it outlived its time):

* ``isolate_items`` (extraction, comparison): the unit is split and its items retried one
  by one; an item that is lost alone is yielded as a :class:`TaskFailure` and recorded
  as that item's failure, so one bad image or pair never costs the rest of the run;
* otherwise (1:N search units, which hold no plugin failure of their own): the unit is
  recomputed whole, up to ``retries`` times, then the run stops with an error naming it.

* :class:`LocalBackend` (default): isolated worker processes on this machine
  (:class:`bench.engine.isolation.IsolatedPool`), with a deadline per item.
* :class:`DaskBackend`: a Dask distributed cluster, either an existing scheduler
  (``tcp://host:port``) or a local cluster started for the run. Units are Dask tasks;
  an isolating job's units run in a child process of each Dask worker, with the same
  deadlines and splitting as the local pool, so a plugin that crashes or hangs costs one
  item and never a Dask worker. A worker that dies for another reason (out of memory)
  takes its running units with it and the scheduler reruns them elsewhere
  (``distributed.scheduler.allowed-failures`` times, default 3), then the run stops with
  an error. Workers must see the job's files at the same paths (a shared file system);
  this is checked before any work is sent.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections import deque
from typing import Any, Iterator, Protocol, Sequence

from bench.engine.isolation import IsolatedPool, Task, TaskFailure, WorkerSetupError

log = logging.getLogger(__name__)

#: Thread pools of numerical libraries; workers run with one thread each (as NIST times
#: searches), unless the variable is already set. Dask's nanny sets the same by default.
SINGLE_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
#: Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 in its workers by default; setting it
#: at all turns off glibc's dynamic mmap threshold, so every large temporary array is
#: mapped and faulted in again: the MCC matcher then needs about 1.5 times the CPU. Local
#: clusters started here leave it unset; see docs/identification.md for other clusters.
NANNY_MALLOC_TRIM = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"
#: Dask worker processes are daemonic by default, and a daemonic process may not start
#: children: isolating jobs need workers started with this set to False (local clusters
#: started here are; for others, DASK_DISTRIBUTED__WORKER__DAEMON=False).
WORKER_DAEMON = "distributed.worker.daemon"


class BackendError(RuntimeError):
    """The backend cannot run the work (unreachable scheduler, no workers, a unit that
    keeps failing)."""


class Job(Protocol):
    """One kind of work of one run (picklable; built in the driver, run in workers)."""

    #: Identifies the job: workers keep one state per key (and per thread on Dask).
    key: str
    #: What the units are, for messages ("extraction", "comparison", "search").
    name: str
    #: Seconds allowed per item of a unit; None: the backend's own ``task_timeout``.
    item_timeout: float | None
    #: True: a lost unit is split, and an item lost alone is yielded as a TaskFailure.
    isolate_items: bool

    def setup(self) -> Any:
        """Runs once in each worker process: the state ``handle`` gets (plugin instances)."""
        ...

    def handle(self, state: Any, items: list[Any]) -> list[Any]:
        """Runs in a worker: one result per item. Plugin failures are results, not raises."""
        ...

    def shared_paths(self) -> Sequence[str]:
        """Files or folders every worker must be able to read."""
        ...


Results = Iterator[tuple[Task, "list[Any] | TaskFailure"]]


class Backend(Protocol):
    name: str

    def slots(self) -> int:
        """Units that can run at the same time."""
        ...

    def run(self, job: Job, tasks: list[Task]) -> Results:
        ...

    def describe(self) -> dict[str, Any]:
        ...

    def close(self) -> None:
        ...


# ----------------------------------------------------------- worker entry points
_states: dict[tuple[str, int], Any] = {}
_pools: dict[tuple[str, int], IsolatedPool] = {}
_states_lock = threading.Lock()


def worker_state(job: Job) -> Any:
    """This thread's state for ``job`` (set up once; Dask workers may run threads). A
    thread keeps the state of one job at a time."""
    key = (job.key, threading.get_ident())
    with _states_lock:
        if key in _states:
            return _states[key]
        for k in [k for k in _states if k[1] == key[1]]:
            del _states[k]
    state = job.setup()
    with _states_lock:
        _states[key] = state
    return state


def run_items(job: Job, items: list[Any]) -> list[Any]:
    """Compute one unit in this process (the Dask task function of a job that does not
    isolate items)."""
    return job.handle(worker_state(job), items)


def run_items_isolated(job: Job, items: list[Any]) -> list[Any]:
    """Compute one unit in a child process of this (Dask worker) process, kept between
    units: a plugin that crashes or hangs ends the child, never the Dask worker. Returns
    one entry per item: its result, or a :class:`TaskFailure` for an item lost alone."""
    key = (job.key, threading.get_ident())
    with _states_lock:
        pool = _pools.get(key)
        if pool is None:
            for k in [k for k in _pools if k[1] == key[1]]:
                _pools.pop(k).close()
            pool = _pools[key] = IsolatedPool(1, _setup_local, (job,), _handle_local,
                                              timeout_per_item=job.item_timeout or 3600.0, keep_workers=True)
    out: list[Any] = [None] * len(items)
    for task, result in pool.run([Task(None, items)]):
        if task.key is None:  # the whole unit (or its only item, lost)
            return [result] if isinstance(result, TaskFailure) else list(result)
        i = task.key[1]  # an item retried alone after the unit was lost
        out[i] = result if isinstance(result, TaskFailure) else result[0]
    return out


def _setup_local(job: Job) -> tuple[Job, Any]:
    return job, job.setup()


def _handle_local(state: tuple[Job, Any], items: list[Any]) -> list[Any]:
    job, inner = state
    return job.handle(inner, items)


def can_read(paths: Sequence[str]) -> str:
    """On a worker: "" when every path is readable, else what is not (Dask pre-flight)."""
    bad = [p for p in paths if not os.access(p, os.R_OK)]
    return "" if not bad else f"{socket.gethostname()} cannot read {', '.join(bad)}"


def can_start_children() -> str:
    """On a worker: "" when it may start child processes, else why not (Dask pre-flight)."""
    import multiprocessing

    if multiprocessing.current_process().daemon:
        return (f"{socket.gethostname()}: the worker is a daemonic process, which may not start the child "
                f"processes that isolate plugins; start the workers with DASK_DISTRIBUTED__WORKER__DAEMON=False")
    return ""


def _unit_name(job: Job, task: Task) -> str:
    return f"{job.name} unit {task.key}"


class LocalBackend:
    """Isolated worker processes on this machine."""

    name = "local"

    def __init__(self, jobs: int = 0, task_timeout: float = 3600.0, retries: int = 2) -> None:
        self.jobs = jobs if jobs and jobs > 0 else (os.cpu_count() or 1)
        self.task_timeout = float(task_timeout)
        self.retries = int(retries)

    def slots(self) -> int:
        return self.jobs

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "workers": self.jobs, "threads_per_worker": 1,
                "task_timeout_s": self.task_timeout, "retries": self.retries}

    def run(self, job: Job, tasks: list[Task]) -> Results:
        saved = {v: os.environ.get(v) for v in SINGLE_THREAD_ENV}
        for v in SINGLE_THREAD_ENV:  # workers are spawned: they read these at start
            os.environ.setdefault(v, "1")
        try:
            if job.isolate_items:
                yield from self._pool(job, tasks).run(tasks)
            else:
                yield from self._run_whole(job, tasks)
        finally:
            for v, old in saved.items():
                if old is None:
                    os.environ.pop(v, None)
                else:
                    os.environ[v] = old

    def _pool(self, job: Job, tasks: list[Task]) -> IsolatedPool:
        timeout = self.task_timeout if job.item_timeout is None else job.item_timeout
        return IsolatedPool(min(self.jobs, max(1, len(tasks))), _setup_local, (job,), _handle_local,
                            timeout_per_item=timeout)

    def _run_whole(self, job: Job, tasks: list[Task]) -> Results:
        pending = [Task(t.key, t.items, attempt_split=False) for t in tasks]
        failures: dict[Any, list[str]] = {}
        while pending:
            again: list[Task] = []
            try:
                for task, result in self._pool(job, pending).run(pending):
                    if isinstance(result, TaskFailure):
                        failures.setdefault(task.key, []).append(f"{result.status}: {result.message}")
                        if len(failures[task.key]) > self.retries:
                            raise BackendError(
                                f"{_unit_name(job, task)} failed {len(failures[task.key])} times "
                                f"({'; '.join(failures[task.key])}); stopping rather than leaving it out")
                        log.warning("%s lost (%s); it will be recomputed", _unit_name(job, task), result.message)
                        again.append(task)
                        continue
                    yield task, result
            except WorkerSetupError as exc:
                raise BackendError(str(exc)) from exc
            except RuntimeError as exc:
                if isinstance(exc, BackendError):
                    raise
                raise BackendError(f"a {job.name} unit failed: {exc}") from exc
            pending = again

    def close(self) -> None:
        pass


class DaskBackend:
    """A Dask distributed cluster: ``address`` of a running scheduler, or None to start
    a local cluster of ``local_workers`` single-threaded worker processes on loopback."""

    name = "dask"

    def __init__(self, address: str | None = None, local_workers: int | None = None,
                 connect_timeout: float = 10.0, retries: int = 1, threads_per_worker: int = 1) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:
            raise BackendError("the Dask backend needs dask[distributed] (pip install 'fingerbench[dask]')") from exc
        self.address = address
        self.retries = int(retries)
        self.cluster = None
        if address:
            try:
                self.client = Client(address, timeout=f"{connect_timeout}s")
            except (OSError, TimeoutError) as exc:
                raise BackendError(f"cannot reach the Dask scheduler at {address} within "
                                   f"{connect_timeout:g} s: {exc}") from exc
        else:
            import dask

            n = local_workers or (os.cpu_count() or 1)
            self._environ = dict(os.environ)  # nannies write their settings into this process's environment
            with dask.config.set({NANNY_MALLOC_TRIM: None, WORKER_DAEMON: False}):
                self.cluster = LocalCluster(n_workers=n, threads_per_worker=threads_per_worker, processes=True,
                                            host="127.0.0.1", dashboard_address="127.0.0.1:0")
            self.client = Client(self.cluster)
        try:
            self.client.wait_for_workers(1, timeout=connect_timeout)
        except (OSError, TimeoutError) as exc:
            self.close()
            raise BackendError(f"the Dask scheduler at {self.client.scheduler.address} has no workers "
                               f"(waited {connect_timeout:g} s)") from exc

    def _workers(self) -> dict[str, Any]:
        return self.client.scheduler_info(n_workers=-1)["workers"]

    def slots(self) -> int:
        return max(1, sum(int(w.get("nthreads", 1)) for w in self._workers().values()))

    def describe(self) -> dict[str, Any]:
        workers = self._workers()
        return {"backend": self.name, "scheduler": self.client.scheduler.address,
                "local_cluster": self.cluster is not None, "workers": len(workers),
                "threads": sum(int(w.get("nthreads", 1)) for w in workers.values())}

    def _preflight(self, job: Job) -> None:
        try:
            answers = self.client.run(can_read, list(job.shared_paths()))
        except Exception as exc:
            raise BackendError(f"the Dask workers cannot run FingerBench's code ({type(exc).__name__}: {exc}); "
                               f"install the same FingerBench and plugin packages on every worker") from exc
        bad = [f"{w}: {a}" for w, a in answers.items() if a]
        if job.isolate_items and not bad:
            daemonic = [f"{w}: {a}" for w, a in self.client.run(can_start_children).items() if a]
            if daemonic:
                raise BackendError(f"Dask workers cannot run this {job.name}: " + "; ".join(daemonic))
        if bad:
            raise BackendError(f"Dask workers cannot read the files of this {job.name} (the run directory, the "
                               f"template cache and the dataset must be on a file system the workers share, at "
                               f"the same paths): " + "; ".join(bad))

    def run(self, job: Job, tasks: list[Task]) -> Results:
        from distributed import as_completed
        from distributed.client import FutureCancelledError

        self._preflight(job)
        todo = deque(tasks)
        window = max(2, 2 * self.slots())
        tag = job.key[:12]
        serial = iter(range(1 << 62))
        # isolating jobs run their items in a child of the Dask worker (same deadlines as the
        # local pool) and record plugin failures themselves: nothing for Dask to retry
        fn, retries = (run_items_isolated, 0) if job.isolate_items else (run_items, self.retries)
        futures: dict[str, Task] = {}
        ac = as_completed()

        def refill() -> None:
            while todo and len(futures) < window:
                t = todo.popleft()
                f = self.client.submit(fn, job, t.items, key=f"fingerbench-{job.name}-{tag}-{next(serial)}",
                                       pure=False, retries=retries)
                futures[f.key] = t
                ac.add(f)

        refill()
        for f in ac:
            task = futures.pop(f.key)
            try:
                result = f.result()
            except FutureCancelledError as exc:
                raise BackendError(f"{_unit_name(job, task)} was cancelled (the scheduler or client went away)") from exc
            except Exception as exc:
                kind = type(exc).__name__
                if kind == "KilledWorker":
                    raise BackendError(
                        f"{_unit_name(job, task)}: the workers running it died too many times ({exc}); likely out of "
                        f"memory; stopping rather than leaving it out") from exc
                raise BackendError(f"{_unit_name(job, task)} failed on a Dask worker: {kind}: {exc}") from exc
            finally:
                f.release()
            if job.isolate_items and any(isinstance(r, TaskFailure) for r in result):
                for i, (item, r) in enumerate(zip(task.items, result)):  # as the local pool reports them
                    yield Task((task.key, i), [item], attempt_split=False), (r if isinstance(r, TaskFailure) else [r])
            else:
                yield task, result
            refill()

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()
                os.environ.clear()
                os.environ.update(self._environ)

