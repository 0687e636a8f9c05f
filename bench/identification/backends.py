"""Execution backends: where the units of a 1:N run are computed.

Both backends take the same :class:`.search.SearchContext` and list of units and yield
``((b, g), result)`` as units finish, in any order; the runner stores each result as it
arrives, so results do not depend on the backend (only timings do).

* :class:`LocalBackend` (default): isolated worker processes on this machine
  (:class:`bench.isolation.IsolatedPool`). A worker that crashes or outlives
  ``task_timeout`` is replaced and its unit recomputed, up to ``retries`` times; then
  the run stops with an error naming the unit and the reason.
* :class:`DaskBackend`: a Dask distributed cluster, either an existing scheduler
  (``tcp://host:port``) or a local cluster started for the run. Units are Dask tasks;
  a worker that dies takes its running units with it and the scheduler reruns them
  elsewhere (``distributed.scheduler.allowed-failures`` times, default 3), after which
  the run stops with an error. Workers must see the run directory at the same path
  (shared file system); this is checked before any work is sent.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from typing import Any, Iterator, Protocol

from bench.identification.search import SearchContext, can_read, handle_local, run_unit, setup_local
from bench.isolation import IsolatedPool, Task, TaskFailure, WorkerSetupError

log = logging.getLogger(__name__)

Unit = tuple[int, int]
#: Thread pools of numerical libraries; workers run with one thread each (as NIST times
#: searches), unless the variable is already set. Dask's nanny sets the same by default.
SINGLE_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
#: Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 in its workers by default; setting it
#: at all turns off glibc's dynamic mmap threshold, so every large temporary array is
#: mapped and faulted in again: the MCC matcher then needs about 1.5 times the CPU. Local
#: clusters started here leave it unset; see docs/identification.md for other clusters.
NANNY_MALLOC_TRIM = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"


class BackendError(RuntimeError):
    """The backend cannot run the work (unreachable scheduler, no workers, a unit that
    keeps failing)."""


class Backend(Protocol):
    name: str

    def slots(self) -> int:
        """Units that can run at the same time."""
        ...

    def run(self, ctx: SearchContext, units: list[Unit]) -> Iterator[tuple[Unit, dict[str, Any]]]:
        ...

    def describe(self) -> dict[str, Any]:
        ...

    def close(self) -> None:
        ...


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

    def run(self, ctx: SearchContext, units: list[Unit]) -> Iterator[tuple[Unit, dict[str, Any]]]:
        saved = {v: os.environ.get(v) for v in SINGLE_THREAD_ENV}
        for v in SINGLE_THREAD_ENV:  # workers are spawned: they read these at start
            os.environ.setdefault(v, "1")
        try:
            yield from self._run(ctx, units)
        finally:
            for v, old in saved.items():
                if old is None:
                    os.environ.pop(v, None)
                else:
                    os.environ[v] = old

    def _run(self, ctx: SearchContext, units: list[Unit]) -> Iterator[tuple[Unit, dict[str, Any]]]:
        pending = list(units)
        failures: dict[Unit, list[str]] = {}
        while pending:
            pool = IsolatedPool(min(self.jobs, len(pending)), setup_local, (ctx,), handle_local,
                                timeout_per_item=self.task_timeout)
            again: list[Unit] = []
            try:
                for task, result in pool.run(Task(u, [u], attempt_split=False) for u in pending):
                    unit: Unit = task.key
                    if isinstance(result, TaskFailure):
                        failures.setdefault(unit, []).append(f"{result.status}: {result.message}")
                        if len(failures[unit]) > self.retries:
                            raise BackendError(
                                f"unit p{unit[0]}-g{unit[1]} failed {len(failures[unit])} times "
                                f"({'; '.join(failures[unit])}); stopping rather than leaving it out")
                        log.warning("unit p%d-g%d lost (%s); it will be recomputed", unit[0], unit[1], result.message)
                        again.append(unit)
                        continue
                    yield unit, result[0]
            except WorkerSetupError as exc:
                raise BackendError(str(exc)) from exc
            except RuntimeError as exc:
                if isinstance(exc, BackendError):
                    raise
                raise BackendError(f"a search unit failed: {exc}") from exc
            finally:
                pool.close()
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
            with dask.config.set({NANNY_MALLOC_TRIM: None}):
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

    def run(self, ctx: SearchContext, units: list[Unit]) -> Iterator[tuple[Unit, dict[str, Any]]]:
        from distributed import as_completed
        from distributed.client import FutureCancelledError

        paths = [ctx.gallery_store, ctx.probe_store]
        try:
            answers = self.client.run(can_read, paths)
        except Exception as exc:
            raise BackendError(f"the Dask workers cannot run FingerBench's code ({type(exc).__name__}: {exc}); "
                               f"install the same FingerBench and matcher packages on every worker") from exc
        bad = [f"{w}: {a}" for w, a in answers.items() if a]
        if bad:
            raise BackendError("Dask workers cannot read the run's template stores (the run directory must be "
                               "on a file system the workers share, at the same path): " + "; ".join(bad))
        todo = deque(units)
        window = max(2, 2 * self.slots())
        tag = ctx.key[:12]

        def submit(u: Unit):
            return self.client.submit(run_unit, ctx, u[0], u[1], key=f"fingerbench-{tag}-p{u[0]}-g{u[1]}",
                                      pure=False, retries=self.retries)

        futures = {}
        ac = as_completed()
        while todo and len(futures) < window:
            u = todo.popleft()
            f = submit(u)
            futures[f.key] = u
            ac.add(f)
        for f in ac:
            u = futures.pop(f.key)
            try:
                result = f.result()
            except FutureCancelledError as exc:
                raise BackendError(f"unit p{u[0]}-g{u[1]} was cancelled (the scheduler or client went away)") from exc
            except Exception as exc:
                kind = type(exc).__name__
                if kind == "KilledWorker":
                    raise BackendError(
                        f"unit p{u[0]}-g{u[1]}: the workers running it died too many times ({exc}); likely out of "
                        f"memory or a crash in the matcher; stopping rather than leaving it out") from exc
                raise BackendError(f"unit p{u[0]}-g{u[1]} failed on a Dask worker: {kind}: {exc}") from exc
            finally:
                f.release()
            yield u, result
            if todo:
                n = todo.popleft()
                nf = submit(n)
                futures[nf.key] = n
                ac.add(nf)

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()
                os.environ.clear()
                os.environ.update(self._environ)
