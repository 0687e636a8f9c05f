"""Where a command's work runs: the options shared by ``run`` and ``identify``."""

from __future__ import annotations

import argparse

from bench.cli.argtypes import non_negative, positive


def add_execution_args(p: argparse.ArgumentParser, task_timeout: bool = False) -> None:
    """The backend options (see :mod:`bench.engine.backends`)."""
    exe = p.add_argument_group("execution")
    exe.add_argument("--jobs", "-j", type=non_negative, default=0, help="local worker processes (0 = all cores)")
    exe.add_argument("--scheduler", metavar="ADDRESS",
                     help="run on the Dask cluster of this scheduler (tcp://host:port); its workers must see "
                          "the dataset, the template cache and the output folder at the same paths")
    exe.add_argument("--dask-local", type=positive, metavar="N", default=None,
                     help="run on a local Dask cluster of N single-threaded worker processes")
    exe.add_argument("--connect-timeout", type=float, default=10.0, help="seconds to reach the Dask scheduler")
    if task_timeout:
        exe.add_argument("--task-timeout", type=float, default=3600.0, help="local backend: seconds allowed per unit")
    exe.add_argument("--retries", type=non_negative, default=2,
                     help="times a unit lost with its worker is recomputed before the run stops (1:N units)")


def backend_from_args(args: argparse.Namespace):
    """The backend the options ask for: Dask when a scheduler or a local cluster size is
    given, else the local isolated process pool. Raises BackendError when unreachable."""
    from bench.engine.backends import DaskBackend, LocalBackend

    if args.scheduler or args.dask_local:
        return DaskBackend(args.scheduler, args.dask_local, connect_timeout=args.connect_timeout,
                           retries=args.retries)
    return LocalBackend(args.jobs, getattr(args, "task_timeout", 3600.0), args.retries)
