"""``references.bib`` of a report: the publications behind the datasets, protocols,
algorithms and statistics of its runs, each taken from its declaration (a dataset's
``DatasetInfo.bibtex``, a protocol's entry in :data:`bench.references.PROTOCOL_BIBTEX`, a
plugin class's ``bibtex`` attribute, the subject bootstrap's :data:`bench.references.SUBSETS_BOOTSTRAP`).
"""

from __future__ import annotations

import logging
from typing import Sequence

from bench import references
from bench.report.rundata import RunData

log = logging.getLogger(__name__)


def _dataset_bibtex(name: str) -> str:
    from bench.datasets import registry

    infos = registry.available()
    info = infos.get(name)
    if info is None and name.startswith("synthetic-"):  # a synthetic set made with other parameters
        info = infos.get("synthetic")
    return info.bibtex if info is not None else ""


def _plugin_bibtex(kind: str, name: str) -> str:
    from bench.plugins import registry

    try:
        cls = registry.entry(kind, name).load()
    except Exception as exc:  # not registered (a file plugin) or not installed here
        log.info("no reference for %s %s: %s", kind, name, exc)
        return ""
    return str(getattr(cls, "bibtex", "") or "")


def cited(runs: Sequence[RunData], *, bootstrap: bool = True) -> dict[str, tuple[str, list[str]]]:
    """BibTeX entries by key, each with what cites it (``dataset fvc2002-db1-b``, ...)."""
    out: dict[str, tuple[str, list[str]]] = {}

    def add(text: str, why: str) -> None:
        for key, entry in references.entries(text).items():
            out.setdefault(key, (entry, []))
            if why not in out[key][1]:
                out[key][1].append(why)

    for r in runs:
        add(_dataset_bibtex(r.dataset), f"dataset {r.dataset}")
        add("\n".join(references.PROTOCOL_BIBTEX.get(r.protocol, ())), f"protocol {r.protocol}")
        add(_plugin_bibtex("extractor", r.extractor), f"extractor {r.extractor}")
        add(_plugin_bibtex("matcher", r.matcher), f"matcher {r.matcher}")
        quality = r.manifest.get("quality")
        if quality:
            add(_plugin_bibtex("quality", quality["name"]), f"quality {quality['name']}")
            add(references.ERROR_VERSUS_REJECT, "error-versus-reject characteristic")
    if bootstrap:
        add(references.SUBSETS_BOOTSTRAP, "95 % intervals (subject bootstrap)")
    return out


def references_bib(runs: Sequence[RunData], *, bootstrap: bool = True) -> str:
    """The text of ``references.bib``: one entry per publication, a comment naming what cites it."""
    parts = ["% References of a FingerBench report: the datasets, protocols, algorithms and statistics",
             "% of its runs, as each declares them. Algorithms or datasets without a declared",
             "% publication are not listed.", ""]
    for key, (entry, why) in cited(runs, bootstrap=bootstrap).items():
        parts += [f"% {key}: {'; '.join(why)}", entry, ""]
    return "\n".join(parts)
