"""Assemble a report from run directories: check them, compute, draw, write the files.

Output folder::

    report.html       self-contained page (figures embedded; open it offline)
    report.md         the same tables in Markdown, figures linked from figures/
    summary.json      every number, with per-item timings (input of ``fingerbench compare``)
    indicators.csv    one row per run and FVC indicator (value, interval, N, reason; fractions)
    thresholds.csv    one row per run and operating point: score threshold and its interval
    speed.csv         one row per run
    references.bib    BibTeX of the datasets, protocols, algorithms and statistics used
    figures/*.png     the figures of report.md; *.svg and *.pdf the same as vector files,
                      *.tex a LaTeX figure with its caption
    tables/*.csv|md|tex  each table of the report with its caption (LaTeX: booktabs)

Runs that assessed image quality add, per dataset and protocol, the quality distribution,
the error-versus-reject characteristic and DET curves per quality band (figures
``*-quality``, ``*-erc``, ``*-bands``) and a table (``tables/*-quality``).
"""

from __future__ import annotations

import json
import logging
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any, Sequence

from bench.report import citations, html, plots, tables, worst
from bench.report import quality as report_quality
from bench.report.output import ReportOutput
from bench.report.rundata import RunData, load_run
from bench.report.summary import summarise, summary_document

log = logging.getLogger(__name__)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "group"


def _config(run: RunData) -> dict[str, str]:
    """What distinguishes two configurations of one extractor + matcher pair."""
    m = run.manifest
    out = {"extractor version": str(m["extractor"].get("version")),
           "matcher version": str(m["matcher"].get("version"))}
    for side in ("extractor", "matcher"):
        for k, v in sorted((m[side].get("params") or {}).items()):
            out[f"{k}"] = json.dumps(v) if not isinstance(v, str) else v
    return out


def display_labels(runs: Sequence[RunData]) -> dict[str, str]:
    """``extractor + matcher`` per run directory. Configurations of the same pair that differ
    (versions, parameters) get what differs appended, the same in every section, e.g.
    ``mindtct + bozorth3 (max_minutiae=100)``; a configuration run twice on one dataset gets
    ``#1``, ``#2``."""
    labels: dict[str, str] = {}
    by_label: dict[str, list[RunData]] = {}
    for r in runs:
        by_label.setdefault(r.label, []).append(r)
    for label, members in by_label.items():
        configs = [_config(r) for r in members]
        keys = sorted({k for c in configs for k in c})
        differing = [k for k in keys if len({c.get(k) for c in configs}) > 1]
        for r, c in zip(members, configs):
            extra = ", ".join(f"{k}={c.get(k, '-')}" for k in differing)
            labels[str(r.path)] = f"{label} ({extra})" if extra else label
    by_group: dict[tuple, list[RunData]] = {}
    for r in runs:
        by_group.setdefault(r.group, []).append(r)
    for members in by_group.values():
        names = [labels[str(r.path)] for r in members]
        count: dict[str, int] = {}
        for r, name in zip(members, names):
            if names.count(name) > 1:
                count[name] = count.get(name, 0) + 1
                labels[str(r.path)] = f"{name} #{count[name]}"
    return labels


def _group_notes(runs: Sequence[RunData]) -> list[str]:
    notes = []
    groups = {r.group for r in runs}
    if len(groups) > 1:
        notes.append(f"These runs cover {len(groups)} different dataset/protocol combinations: each is "
                     f"reported in its own section and curves are never overlaid across them.")
    by_name: dict[tuple[str, str], set] = {}
    for r in runs:
        by_name.setdefault((r.dataset, r.protocol), set()).add(r.group)
    for (ds, pr), gs in sorted(by_name.items()):
        if len(gs) > 1:
            digests = sorted({g[1][:12] for g in gs})
            pairs = sorted({g[3][:12] for g in gs})
            what = (f"different image files (dataset sha256 {', '.join(digests)})" if len(digests) > 1
                    else f"different pair lists (pairs sha256 {', '.join(pairs)})")
            notes.append(f"Runs on {ds} under protocol {pr} used {what}; they are not comparable and "
                         f"are reported as separate groups.")
    return notes


def write_report(runs: Sequence[Path], out: Path, *, n_replicates: int = 1000, seed: int = 0,
                 worst_k: int = 3) -> Path:
    """Write the report of ``runs`` into ``out``; return the path of ``report.html``.

    Raises :class:`bench.store.RunDirError` when a run directory is incomplete, from
    another schema version, or inconsistent.
    """
    paths = list(OrderedDict((Path(r).resolve(), Path(r)) for r in runs).values())
    data = [load_run(p) for p in paths]
    out = Path(out)
    files = ReportOutput(out, ("report.html", "report.md", "summary.json", "indicators.csv", "speed.csv",
                               "thresholds.csv", "references.bib"))
    (out / "figures").mkdir(parents=True, exist_ok=True)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    labels = display_labels(data)
    colour_map = plots.colours(list(labels.values()))
    notes = _group_notes(data)
    if len(paths) < len(runs):
        notes.append(f"{len(runs) - len(paths)} run directories were given twice; each is reported once.")
    warnings = [w for d in data for w in d.warnings]
    for w in warnings:
        log.warning("%s", w)

    summaries = {}
    for d in data:
        log.info("bootstrap of %s (%d comparisons)", d.path, len(d.comparisons))
        summaries[str(d.path)] = summarise(d, n_replicates=n_replicates, seed=seed)

    grouped: dict[tuple, list[RunData]] = {}
    for d in data:
        grouped.setdefault(d.group, []).append(d)
    several_protocols = len({d.protocol for d in data}) > 1
    groups: list[dict[str, Any]] = []
    figures: dict[str, bytes] = {}
    captions: dict[str, str] = {}
    figure_files: dict[str, str] = {}
    used_ids: set[str] = set()

    def save_figures(gid: str, drawn: dict[str, Any]) -> None:
        """Write each figure of a group in every format with its LaTeX snippet."""
        for name, fig in drawn.items():
            key = f"{gid}-{name}"
            for fmt in plots.FIGURE_FORMATS:
                rendered = plots.render(fig, fmt)
                files.path(f"figures/{key}.{fmt}").write_bytes(rendered)
                if fmt == "png":
                    figures[key] = rendered
            files.path(f"figures/{key}.tex").write_text(tables.latex_figure(key, captions[key]), encoding="utf-8")
            figure_files[key] = f"figures/{key}.png"

    for key in sorted(grouped, key=lambda k: (k[0], k[2], k[1], k[3])):
        members = sorted(grouped[key], key=lambda d: labels[str(d.path)])
        first = members[0]
        ambiguous = sum(1 for k in grouped if k[0] == key[0] and k[2] == key[2]) > 1
        digests = f"images {key[1][:8]}, pairs {key[3][:8]}"
        title = f"{first.dataset}, protocol {first.protocol}" + (f" ({digests})" if ambiguous else "")
        column = first.dataset + (f" ({first.protocol})" if several_protocols else "") + (
            f" [{digests}]" if ambiguous else "")
        gid = _slug(f"{first.dataset}-{first.protocol}")
        while gid in used_ids:
            gid += "-x"
        used_ids.add(gid)
        prot = first.manifest["protocol"]
        ds = first.manifest["dataset"]
        subtitle = (f"{prot['n_genuine']:,} genuine and {prot['n_impostor']:,} impostor comparisons; "
                    f"{ds.get('n_samples', '?')} images at {ds.get('dpi', '?')} dpi; dataset sha256 "
                    f"{str(ds['sha256'])[:16]}")
        ss = [summaries[str(d.path)] for d in members]
        log.info("figures of %s", title)
        group = {"id": gid, "title": title, "column": column, "subtitle": subtitle, "summaries": ss}
        context = tables.caption_context(group)
        entries = [(labels[str(d.path)], d) for d in members]
        # a curve needs genuine and impostor scores (one impression per finger has no genuine pair)
        curved = [(label, d) for label, d in entries if all(len(x) for x in d.effective_scores())]
        for label, d in entries:
            if (label, d) not in curved:
                log.warning("%s: no DET or ROC curve (%s genuine and %s impostor comparisons)", d.path,
                            *(len(x) for x in d.effective_scores()))
        drawn = {"scores": plots.scores_figure(entries)}
        if curved:
            drawn = {"det": plots.det_figure(curved, colour_map, f"DET: {title}"),
                     "roc": plots.roc_figure(curved, colour_map, f"ROC: {title}"), **drawn}
        captions[f"{gid}-det"] = "DET curves (FNMR against FMR, normal-deviate axes), EER marked. " + context
        captions[f"{gid}-roc"] = "ROC curves (1 - FNMR against FMR, log scale). " + context
        captions[f"{gid}-scores"] = "Genuine and impostor score distributions, FMR(t) and FNMR(t). " + context
        points = []
        for d, s in zip(members, ss):
            e = s["indicators"]["eer"]
            points.append({"label": labels[str(d.path)], "eer": e["value"], "eer_low": e["ci_low"],
                           "eer_high": e["ci_high"], "comparisons_per_s": s["speed"]["comparisons_per_second_per_core"],
                           "extraction_ms": s["speed"]["extraction_ms"]["median"]})
        if len(points) > 1:
            drawn["speed"] = plots.speed_figure(points, colour_map, f"Accuracy against speed: {title}")
            captions[f"{gid}-speed"] = ("EER against comparisons per second per core and against median "
                                        "extraction time, with intervals; circled: Pareto-optimal. " + context)
        save_figures(gid, drawn)
        with_quality = report_quality.quality_runs(entries)
        if with_quality:
            first_q = with_quality[0][1]
            drawn_q = {"quality": report_quality.distribution_figure(first_q, f"Image quality: {first.dataset}")}
            if any(r.summary["quality"]["erc"] for _, r in with_quality):  # some comparison has a pair quality
                drawn_q["erc"] = report_quality.erc_figure(with_quality, colour_map, f"Error against reject: {title}")
                drawn_q["bands"] = report_quality.bands_figure(with_quality, f"DET per quality band: {title}")
            captions[f"{gid}-quality"] = (f"Image quality of the dataset's images by {report_quality.plugin_text(first_q)}; "
                                          f"dotted: quality band edges. " + context)
            captions[f"{gid}-erc"] = ("Error-versus-reject characteristic (Grother and Tabassi 2007; ISO/IEC "
                                      "29794-1): FNMR at a threshold fixed where it is "
                                      f"{100 * (first_q.summary['quality']['erc'] or {}).get('fnmr_target', 0.1):g} % "
                                      "without rejection, as the genuine comparisons of lowest pair quality (the "
                                      "lower of the two images') are set aside; dotted: the ideal curve. " + context)
            captions[f"{gid}-bands"] = ("DET curves per band of pair quality (the lower of the two images' "
                                        "qualities), genuine / impostor comparisons of each band in the legend; "
                                        "a band without both is not drawn. " + context)
            for name in [k for k in ("erc", "bands") if k not in drawn_q]:
                del captions[f"{gid}-{name}"]
            save_figures(gid, drawn_q)
        worst_cases = {}
        if worst_k > 0:
            for d in members:
                worst_cases[str(d.path)] = worst.worst_errors(d, worst_k)
        group["worst"] = worst_cases
        paper_tables = [tables.accuracy_table(group, labels), tables.thresholds_table(group, labels),
                        tables.speed_paper_table(group, labels)]
        if with_quality:
            group["quality_table"] = report_quality.quality_table(group, with_quality)
            paper_tables.append(group["quality_table"])
        group["tables"] = {t.name: t.write(files) for t in paper_tables}
        groups.append(group)

    overview = {"labels": sorted({labels[str(d.path)] for d in data}),
                "datasets": [g["column"] for g in groups],
                # a mean over columns is meaningful only for distinct datasets under one protocol
                "mean": len(groups) > 1 and not several_protocols
                and len({g["summaries"][0]["dataset"] for g in groups}) == len(groups),
                "cells": {(labels[s["run"]], g["column"]): s for g in groups for s in g["summaries"]}}
    if groups:
        tables.overview_paper_table(overview, groups).write(files)
    files.path("references.bib").write_text(
        citations.references_bib(data, bootstrap=n_replicates > 0), encoding="utf-8")
    page = html.page(groups, labels, colour_map, notes, warnings, overview, figures, len(data), captions)
    html_path = out / "report.html"
    html_path.write_text(page, encoding="utf-8")
    (out / "report.md").write_text(tables.markdown(groups, labels, notes + warnings, overview, figure_files, captions),
                                   encoding="utf-8")
    doc = summary_document([summaries[str(d.path)] for d in data], notes=notes + warnings)
    (out / "summary.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    tables.write_csv([summaries[str(d.path)] for d in data], out)
    files.finish()
    return html_path

