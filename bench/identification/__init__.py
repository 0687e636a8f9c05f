"""Identification (1:N): template stores, search units, cascades, the runner and the report::

    from pathlib import Path
    from bench.identification import IdentificationConfig, run_identification
    from bench.protocols import identification as protocol
    from bench.plugins.loading import PluginSpec

    p = protocol.synthetic(gallery_subjects=10_000, probes=300)      # one third mated
    cfg = IdentificationConfig(PluginSpec.resolve("matcher", "mcc"), out=Path("runs/1n"))
    summary = run_identification(p, cfg)                             # local processes
    summary.metrics["rank_identification_rate"]["1"]

See :mod:`.runner` for the run directory, :mod:`bench.metrics.identification` for the definitions,
:mod:`bench.synthetic.model` for what synthetic templates are (and are not), :mod:`bench.protocols.identification` for the protocols, :mod:`.cascade` for an
index in front of the matcher, and
:mod:`bench.engine.backends` for running on a Dask cluster. Names are imported on first use, so a
worker process that only searches does not load the template generators.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BackendError": "bench.engine.backends",
    "DaskBackend": "bench.engine.backends",
    "LocalBackend": "bench.engine.backends",
    "IdentificationProtocol": "bench.protocols.identification",
    "IdentificationConfig": "bench.identification.runner",
    "IdentificationSummary": "bench.identification.runner",
    "run_identification": "bench.identification.runner",
    "MissingTemplatesError": "bench.identification.sources",
    "TemplateSources": "bench.identification.sources",
}
_MODULES = ("store", "search", "sources", "results", "runner", "cascade", "indexes")

__all__ = sorted([*_EXPORTS, *_MODULES])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    if name in _MODULES:
        return importlib.import_module(f"bench.identification.{name}")
    raise AttributeError(f"module 'bench.identification' has no attribute {name!r}")
