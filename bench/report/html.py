"""The self-contained HTML report: one file, figures embedded as base64 images, inline
CSS, no scripts, no external fonts or links to fetch, so it works offline and can be
attached to a CI job.

The pages are Jinja2 templates (``bench/report/templates``): ``base.html`` is the page both
kinds of report share, ``verification.html`` the 1:1 report, ``identification.html`` the 1:N
one; this module turns the summaries into the templates' context. Autoescaping is on, so
every name and path from the runs is HTML-escaped.
"""

from __future__ import annotations

import base64
import time
from functools import lru_cache
from typing import Any, Sequence

import numpy as np

from bench.report.summary import INDICATOR_NAMES
from bench.report.summary import THRESHOLD_NAMES
from bench.report.tables import (
    RATE_INDICATORS, ci_text, n_text, num, pct, reason_notes, shared_n, threshold_text, value_text,
)


@lru_cache(maxsize=1)
def environment() -> Any:
    """The templates' environment (autoescaped; undefined names are errors)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("bench.report", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["b64"] = lambda data: base64.b64encode(data).decode("ascii")
    return env


def render(template: str, **context: Any) -> str:
    """A page of the report from ``template`` (a file in bench/report/templates)."""
    return environment().get_template(template).render(
        generated=time.strftime("%Y-%m-%d %H:%M"), **context)


def cell(ind: dict[str, Any], best: bool = False, notes: Sequence[str] = ()) -> dict[str, Any]:
    """An indicator as a table cell: its value text, interval, reason when it has none."""
    return {"value": ind["value"], "text": value_text(ind), "reason": ind.get("reason") or "",
            "ci": ci_text(ind) if ind["value"] is not None else "", "best": best, "notes": list(notes),
            "plain": False}


def _best(summaries: Sequence[dict[str, Any]], name: str) -> float | None:
    vals = [s["indicators"][name]["value"] for s in summaries if s["indicators"][name]["value"] is not None]
    return min(vals) if len(vals) > 1 and len(set(vals)) > 1 else None


def _row(s: dict[str, Any], labels: dict[str, str], colour_map: dict) -> dict[str, Any]:
    lab = labels[s["run"]]
    return {"label": lab, "colour": colour_map[lab][0]}


def indicator_table(summaries: Sequence[dict[str, Any]], labels: dict[str, str], colour_map: dict) -> dict:
    head = [{"name": INDICATOR_NAMES[k], "n": shared_n(k, summaries)} for k in RATE_INDICATORS]
    rows = []
    for s in summaries:
        cells = []
        for k in RATE_INDICATORS:
            ind = s["indicators"][k]
            best = _best(summaries, k)
            notes = []
            if k == "eer" and ind["value"] is not None:
                lo, hi = s["accuracy_details"]["eer_interval"]
                notes.append(f"FVC interval {pct(lo)}-{pct(hi)}")
            if not shared_n(k, summaries):
                notes.append(f"N {n_text(k, ind)}")
            cells.append(cell(ind, best is not None and ind["value"] == best, notes))
        rows.append({**_row(s, labels, colour_map), "cells": cells})
    return {"head": head, "rows": rows}


def thresholds_table(summaries: Sequence[dict[str, Any]], labels: dict[str, str], colour_map: dict) -> dict:
    """Score threshold at the EER and at FMR100/FMR1000/FMR10000, interval below each."""
    rows = []
    for s in summaries:
        thr = s["accuracy_details"]["thresholds"]
        cells = []
        for k in THRESHOLD_NAMES:
            t = thr[k]
            ci = f"[{t['ci_low']:.4g}, {t['ci_high']:.4g}]" if t["threshold"] is not None and t["ci_low"] is not None \
                else ""
            cells.append({"value": t["threshold"], "reason": t.get("reason") or "", "ci": ci, "best": False,
                          "notes": [], "plain": True, "text": threshold_text(t) if t["threshold"] is None
                          else f"{t['threshold']:.4g}"})
        rows.append({**_row(s, labels, colour_map), "accept": next(iter(thr.values()))["accept"], "cells": cells})
    return {"head": list(THRESHOLD_NAMES.values()), "rows": rows}


def speed_table(summaries: Sequence[dict[str, Any]], labels: dict[str, str], colour_map: dict) -> list[dict]:
    rows = []
    for s in summaries:
        sp = s["speed"]
        rows.append({**_row(s, labels, colour_map), "texts": [
            num(sp["extraction_ms"]["median"]), num(sp["extraction_ms"]["p95"]),
            num(sp["comparison_us"]["median"], ",.0f"), num(sp["comparison_us"]["p95"], ",.0f"),
            num(sp["comparisons_per_second_per_core"], ",.0f"), num(sp["template_bytes"]["mean"], ",.0f"),
            num(sp["minutiae"]["mean"], ".0f")]})
    return rows


def overview_table(overview: dict[str, Any], colour_map: dict) -> dict:
    """EER by algorithm (rows) and dataset (columns; a name may wrap after its first hyphen)."""
    ds = overview["datasets"]
    best = {}
    for d in ds:
        vals = [s["indicators"]["eer"]["value"] for (lab, dd), s in overview["cells"].items()
                if dd == d and s["indicators"]["eer"]["value"] is not None]
        best[d] = min(vals) if len(vals) > 1 else None
    means = {}
    for lab in overview["labels"]:
        vals = [overview["cells"][(lab, d)]["indicators"]["eer"]["value"] for d in ds
                if (lab, d) in overview["cells"]]
        if len(vals) == len(ds) and all(v is not None for v in vals):
            means[lab] = float(np.mean(vals))
    best_mean = min(means.values()) if len(means) > 1 else None
    rows = []
    for lab in overview["labels"]:
        cells = []
        for d in ds:
            s = overview["cells"].get((lab, d))
            ind = None if s is None else s["indicators"]["eer"]
            cells.append(None if ind is None else cell(ind, best[d] is not None and ind["value"] == best[d]))
        rows.append({"label": lab, "colour": colour_map[lab][0], "cells": cells,
                     "mean": pct(means[lab]) if lab in means else None, "mean_best": means.get(lab) == best_mean})
    columns = []
    for d in ds:
        head, sep, tail = d.partition("-")
        columns.append({"head": head, "tail": tail if sep else None})
    return {"columns": columns, "rows": rows, "mean": overview["mean"],
            "show": len(ds) > 1 or len(overview["labels"]) > 1}


def worst_errors(worst: tuple, label: str) -> dict[str, Any]:
    imp, gen, note = worst
    return {"label": label, "note": note, "sections": [
        {"title": title, "cases": [{"image": c.image, "probe": c.probe, "reference": c.reference, "rank": c.rank,
                                    "score": f"{c.score:g}", "notes": list(c.notes)} for c in cases]}
        for title, cases in (("Highest-scoring impostor comparisons (false matches first)", imp),
                             ("Lowest-scoring genuine comparisons (false non-matches first)", gen))]}


def provenance_rows(groups: Sequence[dict[str, Any]], labels: dict[str, str]) -> list[dict[str, Any]]:
    rows = []
    for g in groups:
        for s in g["summaries"]:
            p = s["provenance"]
            ds, pr = p["dataset"], p["protocol"]
            mach, src = p.get("machine") or {}, p.get("source") or {}
            rows.append({
                "label": labels[s["run"]], "run": s["run"], "created": str(p.get("created") or ""),
                "dataset": {"name": str(ds.get("name")), "sha256": str(ds.get("sha256"))[:16],
                            "n_samples": str(ds.get("n_samples")), "dpi": str(ds.get("dpi")),
                            "n_problems": str(ds.get("n_problems") or 0)},
                "protocol": {"name": str(pr.get("name")), "params": pr.get("params"),
                             "n_genuine": str(pr.get("n_genuine")), "n_impostor": str(pr.get("n_impostor")),
                             "pairs_sha256": str(pr.get("pairs_sha256"))[:16]},
                "extractor": {k: p["extractor"].get(k) for k in ("name", "version", "params")},
                "matcher": {k: p["matcher"].get(k) for k in ("name", "version", "params")},
                "machine": {"cpu": str(mach.get("cpu", "unknown")), "cores": str(mach.get("cores", "?")),
                            "platform": str(mach.get("platform", "")), "python": str(mach.get("python", "?"))},
                "commit": (src.get("commit") or "unknown")[:12],
                "dirty": " (uncommitted changes)" if src.get("dirty") else "",
                "packages": ", ".join(f"{k} {v}" for k, v in (p.get("packages") or {}).items())})
    return rows


FOOTER = ("Made by FingerBench from the stored records of the runs; summary.json, indicators.csv, thresholds.csv "
          "and speed.csv hold the same numbers; figures/ and tables/ hold every figure (PNG, SVG, PDF) and table "
          "(CSV, Markdown, LaTeX) with its caption, references.bib what to cite.")


def page(groups: Sequence[dict[str, Any]], labels: dict[str, str], colour_map: dict, notes: Sequence[str],
         warnings: Sequence[str], overview: dict[str, Any], figures: dict[str, bytes], n_runs: int,
         captions: dict[str, str] | None = None) -> str:
    """The 1:1 report page."""
    datasets = sorted({g["summaries"][0]["dataset"] for g in groups})
    n_alg = len(overview["labels"])
    subtitle = (f"{n_runs} run{'s' if n_runs != 1 else ''}, {n_alg} algorithm{'s' if n_alg != 1 else ''}, "
                f"{len(datasets)} dataset{'s' if len(datasets) != 1 else ''}")
    context_groups = []
    for g in groups:
        ss = g["summaries"]
        context_groups.append({
            "id": g["id"], "title": g["title"], "subtitle": g["subtitle"],
            "indicators": indicator_table(ss, labels, colour_map), "reasons": reason_notes(ss, labels),
            "thresholds": thresholds_table(ss, labels, colour_map), "speed": speed_table(ss, labels, colour_map),
            "quality": g.get("quality_table"),
            "worst": [worst_errors(g["worst"][s["run"]], labels[s["run"]]) for s in ss if g["worst"].get(s["run"])]})
    return render("verification.html", title="FingerBench report", subtitle=subtitle, notes=notes,
                  warnings=warnings, overview=overview_table(overview, colour_map), groups=context_groups,
                  figures=figures, captions=captions or {}, open_worst=n_runs <= 2,
                  provenance=provenance_rows(groups, labels), footer=FOOTER)
