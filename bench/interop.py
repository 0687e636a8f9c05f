"""Interoperability matrix (after NIST MINEX): every extractor against every matcher.

Rows are extractors (template generators), columns matchers. A cell is an ordinary run
directory made by :func:`bench.runner.run_benchmark`, at the place ``fingerbench run``
would put it (``OUT/DATASET/PROTOCOL/EXTRACTOR+MATCHER``), so cells are resumed, shared
with single runs, and recomputable with ``fingerbench metrics``. Templates are cached per
extractor, so each extractor runs once whatever the number of matchers.

Which cells are run:

* native pairs, on the diagonal: extractor and matcher of the same family (the same
  package under ``extractors/``, e.g. ``mindtct`` and ``bozorth3``), whatever the format;
* cross pairs: any matcher that accepts standard minutiae (``"minutiae"`` among its
  ``accepted_formats``) with any extractor whose templates carry standard minutiae (an
  extractor whose templates turn out to hold none, such as an external program's opaque
  templates, gets no cross cells).

Each cell reports the EER and the FNMR at a fixed FMR (``None``, with the reason, where
the protocol's impostor comparisons cannot resolve that FMR); each extractor its mean
minutiae count, mean template size and median extraction time.

The matrix itself is written next to the protocol's folder, as
``OUT/DATASET/interop-PROTOCOL.md`` and ``.json`` (see :func:`matrix_paths`), so that
``OUT/DATASET/PROTOCOL/`` holds run directories only and ``fingerbench report
OUT/DATASET/*/*`` reads every cell.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


from bench import metrics as M
from bench.datasets.base import Dataset
from bench.metrics.summary import load_summary
from bench.plugins import accepts
from bench.protocols import PairList
from bench.plugins.registry import PluginError
from bench.plugins.loading import PluginSpec
from bench.runner import RunConfig, run_benchmark
from bench.store import RunDirError, write_json
from bench.template import MINUTIAE_FORMAT

log = logging.getLogger(__name__)


def family(spec: PluginSpec) -> str:
    """The family of a plugin: the package below ``extractors`` (``extractors.nbis:X`` ->
    ``nbis``), else the top module, or the file name for ``file.py:Class`` targets."""
    module = spec.target.rsplit(":", 1)[0]
    if module.endswith(".py"):
        return Path(module).stem
    parts = module.split(".")
    if parts[0] == "extractors" and len(parts) > 1:
        return parts[1]
    return parts[0]


def safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


@dataclass
class Cell:
    extractor: str
    matcher: str
    native: bool
    run_dir: str | None = None
    eer: float | None = None
    fnmr: float | None = None
    fnmr_reason: str | None = None
    n_genuine: int = 0
    n_impostor: int = 0
    rej_enroll: int = 0
    comparisons_per_second: float | None = None
    skipped: str | None = None  # why the cell was not run
    error: str | None = None  # why the run failed


@dataclass
class ExtractorSummary:
    name: str
    family: str
    template_format: str
    minutiae_mean: float | None = None
    template_bytes_mean: float | None = None
    extraction_ms_median: float | None = None
    fte: float | None = None
    error: str | None = None


@dataclass
class InteropResult:
    dataset: str
    protocol: str
    fmr: float
    extractors: list[ExtractorSummary]
    matchers: list[str]
    cells: list[Cell] = field(default_factory=list)
    #: Where the cells' run directories are (``OUT/DATASET/PROTOCOL``), and the matrix files.
    cells_dir: Path | None = None
    markdown_path: Path | None = None
    json_path: Path | None = None

    def cell(self, extractor: str, matcher: str) -> Cell | None:
        for c in self.cells:
            if c.extractor == extractor and c.matcher == matcher:
                return c
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "protocol": self.protocol, "fmr": self.fmr,
                "extractors": [asdict(e) for e in self.extractors], "matchers": self.matchers,
                "cells": [asdict(c) for c in self.cells]}

    def to_markdown(self) -> str:
        """The MINEX-style table: EER / FNMR@FMR per cell, native pairs in bold; below it,
        the reason of every cell not run or failed (cells sharing a reason on one line)."""
        pct = lambda v: "n/a" if v is None else f"{100 * v:.2f}"  # noqa: E731
        lines = [f"# Interoperability: {self.dataset}, protocol {self.protocol}", "",
                 f"Each cell: EER % / FNMR % at FMR = {100 * self.fmr:g} %; **bold**: native pair "
                 f"(extractor and matcher of one family); '-': not run or failed (reason below the table); "
                 f"FNMR 'n/a': the protocol's impostor comparisons cannot resolve that FMR.", ""]
        head = "| extractor | minutiae | template bytes | extraction ms | " + " | ".join(self.matchers) + " |"
        lines += [head, "|" + "---|" * (4 + len(self.matchers))]
        reasons: dict[str, list[str]] = {}
        for e in self.extractors:
            row = [e.name, "n/a" if e.minutiae_mean is None else f"{e.minutiae_mean:.1f}",
                   "n/a" if e.template_bytes_mean is None else f"{e.template_bytes_mean:.0f}",
                   "n/a" if e.extraction_ms_median is None else f"{e.extraction_ms_median:.1f}"]
            for m in self.matchers:
                c = self.cell(e.name, m)
                if c is None or c.skipped or c.error:
                    row.append("-")
                    why = "not attempted" if c is None else (f"failed: {c.error}" if c.error else c.skipped)
                    reasons.setdefault(why, []).append(f"{e.name} + {m}")
                    continue
                text = f"{pct(c.eer)} / {pct(c.fnmr)}"
                row.append(f"**{text}**" if c.native else text)
            lines.append("| " + " | ".join(row) + " |")
        if reasons:
            lines += ["", "Cells marked '-':", ""]
            lines += [f"- {', '.join(cells)}: {why}" for why, cells in reasons.items()]
        return "\n".join(lines) + "\n"


def matrix_paths(out: Path, dataset: Dataset, protocol: str) -> tuple[Path, Path]:
    """(Markdown, JSON) files of the matrix of ``dataset`` under ``protocol`` in the results
    folder ``out``: ``OUT/DATASET/interop-PROTOCOL.md`` and ``.json``, beside the protocol's
    folder of run directories, never inside it."""
    from bench.synthetic.dataset import run_folder_name

    folder = Path(out) / run_folder_name(dataset)
    stem = f"interop-{safe_name(protocol)}"
    return folder / f"{stem}.md", folder / f"{stem}.json"


def _unavailable(spec: PluginSpec) -> str | None:
    """Why a plugin cannot run here (a missing package, as ``fingerbench list`` says), else
    None; a plugin that cannot even be loaded is left to :meth:`PluginSpec.build` to report."""
    from bench.plugins import registry
    from bench.plugins.loading import load_target

    if spec.name in registry.names(spec.kind) and registry.entry(spec.kind, spec.name).target == spec.target:
        ok, reason = registry.entry(spec.kind, spec.name).availability()
    else:
        try:
            check = getattr(load_target(spec.target), "check_available", None)
            reason = str(check() or "") if callable(check) else ""
        except Exception:  # PluginError, or the check's own failure: build() reports it
            return None
        ok = not reason
    return None if ok else f"{spec.kind} '{spec.name}' is unavailable: {reason}"


def _cell_metrics(summary: dict[str, Any], fmr: float) -> dict[str, Any]:
    """A cell's accuracy and speed, from its run's summary."""
    acc = summary["accuracy"]
    point = acc["fnmr_at_fmr"][M.fmr_target_key(fmr)]
    return {"eer": acc["eer"], "fnmr": point["value"], "fnmr_reason": point["reason"],
            "n_genuine": acc["n_genuine"], "n_impostor": acc["n_impostor"],
            "rej_enroll": int(summary["enrolment"]["rej_enroll"]),
            "comparisons_per_second": summary["speed"]["comparisons_per_second_per_core"]}


def _extractor_stats(summary: dict[str, Any]) -> dict[str, Any]:
    """An extractor's template and speed figures, from a run's summary."""
    enrolment = summary["enrolment"]
    return {"minutiae_mean": enrolment["minutiae"]["mean"], "template_bytes_mean": enrolment["template_bytes"]["mean"],
            "extraction_ms_median": summary["speed"]["extraction_ms"]["median"], "fte": enrolment["fte_rate"]}


def run_interop(
    dataset: Dataset,
    pairs: PairList,
    extractors: list[PluginSpec],
    matchers: list[PluginSpec],
    out: Path,
    cache_dir: Path,
    *,
    fmr: float = 0.01,
    jobs: int = 0,
    extract_timeout: float = 60.0,
    compare_timeout: float = 10.0,
    force: bool = False,
    progress: bool | None = None,
) -> InteropResult:
    """Run every cell (see the module docstring) and write the matrix to the files of
    :func:`matrix_paths`. A cell that fails (a plugin that is unavailable or cannot be
    built, a worker that cannot start) is recorded with its error and logged; the others
    go on. A plugin that is unavailable here (its package is missing) is not tried."""
    from bench.synthetic.dataset import run_folder_name

    base = Path(out) / run_folder_name(dataset) / safe_name(pairs.protocol)
    md_path, json_path = matrix_paths(out, dataset, pairs.protocol)
    result = InteropResult(dataset.name, pairs.protocol, float(fmr), [], [m.name for m in matchers],
                           cells_dir=base, markdown_path=md_path, json_path=json_path)
    template_dataset = any("template" in s.attributes for s in dataset.samples)
    built_matchers: dict[str, Any] = {}
    for m in matchers:
        why = _unavailable(m)
        try:
            built_matchers[m.name] = PluginError(why) if why else m.build()
        except Exception as exc:  # PluginError, or an import error of the plugin's own module
            built_matchers[m.name] = exc
        if isinstance(built_matchers[m.name], Exception):
            log.error("interop: matcher %s: %s", m.name, built_matchers[m.name])
    for e in extractors:
        summary = ExtractorSummary(e.name, family(e), "?")
        result.extractors.append(summary)
        try:
            why = _unavailable(e)
            if why:
                raise PluginError(why)
            instance = e.build()
            summary.template_format = str(getattr(instance, "template_format", MINUTIAE_FORMAT))
        except Exception as exc:
            summary.error = f"{type(exc).__name__}: {exc}"
            log.error("interop: extractor %s: %s", e.name, summary.error)
            for m in matchers:
                result.cells.append(Cell(e.name, m.name, family(e) == family(m), error=summary.error))
            continue
        reads_files = callable(getattr(instance, "extract_file", None))
        if reads_files != template_dataset:
            why = ("reads template files, not images" if reads_files
                   else "extracts from images; this dataset holds template files")
            for m in matchers:
                result.cells.append(Cell(e.name, m.name, family(e) == family(m), skipped=f"{e.name} {why}"))
            continue
        native_first = sorted(matchers, key=lambda m: family(m) != family(e))
        carries_minutiae: bool | None = None
        for m in native_first:
            native = family(m) == family(e)
            cell = Cell(e.name, m.name, native)
            result.cells.append(cell)
            mat = built_matchers[m.name]
            if isinstance(mat, Exception):
                cell.error = str(mat) if isinstance(mat, PluginError) else f"matcher cannot be built: {mat}"
                continue
            formats = tuple(getattr(mat, "accepted_formats", ()))
            if not native:
                if MINUTIAE_FORMAT not in formats:
                    cell.skipped = f"{m.name} accepts only {', '.join(formats)}"
                    continue
                if carries_minutiae is False:
                    cell.skipped = f"the templates of {e.name} carry no standard minutiae"
                    continue
            elif not accepts(mat, summary.template_format):
                cell.skipped = f"{m.name} does not accept {summary.template_format} templates"
                continue
            run_dir = base / f"{safe_name(e.name)}+{safe_name(m.name)}"
            cfg = RunConfig(e, m, run_dir, Path(cache_dir), jobs=jobs, extract_timeout=extract_timeout,
                            compare_timeout=compare_timeout, force=force, progress=progress)
            try:
                run_benchmark(dataset, pairs, cfg)
                cell.run_dir = str(run_dir)
                run_summary, _ = load_summary(run_dir, fmr_targets=(fmr,))
                stats = _extractor_stats(run_summary)
                for k, v in stats.items():
                    if getattr(summary, k) is None:
                        setattr(summary, k, v)
                if carries_minutiae is None:
                    carries_minutiae = bool(stats["minutiae_mean"])
                for k, v in _cell_metrics(run_summary, fmr).items():
                    setattr(cell, k, v)
            except (PluginError, RunDirError, RuntimeError, OSError, ValueError) as exc:
                cell.error = f"{type(exc).__name__}: {exc}".splitlines()[0]
                log.error("interop cell %s + %s failed: %s", e.name, m.name, cell.error)
    md_path.parent.mkdir(parents=True, exist_ok=True)
    write_json(json_path, result.to_dict())
    md_path.write_text(result.to_markdown())
    for old in (base / "interop.json", base / "interop.md"):  # where earlier versions wrote them
        if old.is_file():
            old.unlink()
            log.info("removed %s (the matrix is now %s)", old, md_path.name)
    return result


def available_specs(kind: str) -> tuple[list[PluginSpec], list[tuple[str, str]]]:
    """Every registered plugin of ``kind`` that can run here, and (name, reason) of the others."""
    from bench.plugins import registry

    ok: list[PluginSpec] = []
    skipped: list[tuple[str, str]] = []
    for name in registry.names(kind):
        e = registry.entry(kind, name)
        avail, reason = e.availability()
        needs = getattr(e.load(), "required_parameters", ()) if avail else ()
        if needs:
            skipped.append((name, f"needs parameters ({' '.join(needs)}); name it with -e/-m and --*-param"))
        elif avail:
            ok.append(PluginSpec(kind, e.name, e.target, {}))
        else:
            skipped.append((name, reason))
    return ok, skipped
