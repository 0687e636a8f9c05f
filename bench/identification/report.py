"""Reports of identification (1:N) runs: CMC and identification DET figures, tables, and
the curves behind them, from the stored search tables of one or more runs.

Output folder::

    report.html     self-contained page (figures embedded; no scripts, nothing fetched)
    report.md       the same tables in Markdown, figures linked from figures/
    summary.json    per run: the run's summary (metrics.json, checked against searches.*), timing,
                    provenance
    cmc.csv         run, rank, identification rate (rank 1 .. L)
    hit_rate.csv    run, penetration, hit rate: each cascade's index, and the oracle curve
                    of each exhaustive run
    det.csv         run, list length L (1 and the run's L), threshold, FPIR, FNIR
    figures/*.png   the figures of report.md

Runs are grouped by protocol (its SHA-256): curves of different protocols are never
overlaid. The numbers are the run's summary (``metrics.json``, :mod:`bench.metrics.summary`),
used when its digests match the records and computed again from ``searches.*`` otherwise; the
curves come from ``searches.*`` through :mod:`bench.metrics.identification`, so a report can
be made on any machine from the run directories alone.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from bench.identification import results as res
from bench.report.output import ReportOutput
from bench.metrics.identification import IdentificationCurve, hit_rate_curve, identification_curve
from bench.store import IDENTIFICATION, RunDirError, read_json, read_run_manifest, write_json

log = logging.getLogger(__name__)

FPIR_SHOWN = ("0.01", "0.1")
_PENETRATIONS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


@dataclass
class IdRun:
    """One finished identification run, read from its directory."""

    path: Path
    manifest: dict[str, Any]
    metrics: dict[str, Any]
    timing: dict[str, Any]
    mated: np.ndarray
    mated_score: np.ndarray
    mate_rank: np.ndarray
    top_score: np.ndarray
    mate_index_fraction: np.ndarray | None = None  # a cascade's (see bench.identification.cascade)

    @property
    def index(self) -> dict[str, Any] | None:
        """The index of a cascade run (its description and budget), None for exhaustive search."""
        return (self.manifest.get("search") or {}).get("index")

    @property
    def system(self) -> str:
        """The system a Pareto curve joins: ``[extractor + ][index -> ]matcher``."""
        return f"{self.index['name']} -> {self.label}" if self.index else self.label

    @property
    def budget(self) -> float:
        return float(self.index["penetration"]) if self.index else 1.0

    @property
    def candidates(self) -> int:
        return int(self.manifest["search"]["candidates"])

    @property
    def protocol_key(self) -> str:
        return str(self.manifest["protocol"]["sha256"])

    @property
    def label(self) -> str:
        t = self.manifest.get("templates") or {}
        ext = (t.get("extractor") or {}).get("name")
        matcher = self.manifest["matcher"]["name"]
        return f"{ext} + {matcher}" if ext else matcher

    def hit_rate_needed(self) -> np.ndarray:
        """Per enrolled mated search, the penetration its mate needed: the index's position
        for a cascade, the oracle's (the matcher's rank over the subjects) otherwise."""
        from bench.metrics.identification import oracle_needed_penetration

        m = self.mated
        if self.mate_index_fraction is not None:
            return self.mate_index_fraction[m]
        return oracle_needed_penetration(self.mate_rank[m], int(self.manifest["protocol"]["n_gallery_subjects"]))

    def curve(self, rank: int) -> IdentificationCurve:
        m = self.mated
        return identification_curve(self.mated_score[m], self.mate_rank[m], self.top_score[~m], rank)


def load_id_run(path: Path) -> IdRun:
    """Read a finished identification run: its summary as ``metrics.json`` holds it (computed
    again, with a warning, when missing, stale or edited) and the per-search arrays the curves
    come from; :class:`RunDirError` names what is wrong."""
    from bench.metrics.summary import load_identification_summary, search_arrays

    path = Path(path)
    manifest = read_run_manifest(path, IDENTIFICATION)
    if manifest.get("status") != "complete":
        raise RunDirError(f"{path}: the run has not finished (status {manifest.get('status')!r}); "
                          f"run the same command again to finish it")
    metrics, warnings = load_identification_summary(path)
    for w in warnings:
        log.warning("%s", w)
    table = res.read_table(path / "searches")
    arrays = search_arrays(manifest, table)
    timing = read_json(path / "timing.json") if (path / "timing.json").is_file() else {}
    fraction = table.get("mate_index_fraction")
    return IdRun(path, manifest, metrics, timing, *arrays,
                 None if fraction is None else np.asarray(fraction, dtype=np.float64))


def _backend_text(run: IdRun) -> str:
    b = run.manifest.get("backend") or {}
    return f"{b.get('backend', '?')} x{b.get('workers', '?')}"


def display_labels(runs: Sequence[IdRun]) -> dict[str, str]:
    """``[extractor + ]matcher`` per run; runs of one protocol sharing a label get what
    differs appended (matcher version or parameters, L, backend), then ``#1``, ``#2`` if
    they are still alike."""
    labels: dict[str, str] = {}
    by_key: dict[tuple[str, str], list[IdRun]] = {}
    for r in runs:
        by_key.setdefault((r.protocol_key, r.label), []).append(r)
    for (_, label), members in by_key.items():
        configs = []
        for r in members:
            m = r.manifest["matcher"]
            c = {"version": str(m.get("version"))}
            c.update({k: json.dumps(v) for k, v in sorted((m.get("params") or {}).items())})
            c["L"] = str(r.candidates)
            c["backend"] = _backend_text(r)
            configs.append(c)
        keys = sorted({k for c in configs for k in c})
        differing = [k for k in keys if len({c.get(k) for c in configs}) > 1]
        names = [label + (" (" + ", ".join(f"{k}={c.get(k, '-')}" for k in differing) + ")" if differing else "")
                 for c in configs]
        count: dict[str, int] = {}
        for r, name in zip(members, names):
            if names.count(name) > 1:
                count[name] = count.get(name, 0) + 1
                name = f"{name} #{count[name]}"
            labels[str(r.path)] = name
    return labels


# ------------------------------------------------------------------ figures
def cmc_figure(entries: Sequence[tuple[str, IdRun]], colour_map: dict[str, tuple[str, str]], title: str) -> bytes:
    """Rank-k identification rate for k = 1 .. L (log rank axis), one line per run."""
    from bench.report.plots import _figure, _png, finish_axes

    fig = _figure(4.6, 4.2)
    ax = fig.add_subplot()
    low = 1.0
    for label, run in entries:
        rate = run.metrics.get("cmc")
        if not rate:
            continue
        colour, marker = colour_map[label]
        k = np.arange(1, len(rate) + 1)
        ax.step(k, rate, where="post", color=colour, lw=1.6, label=label)
        ax.plot([1], [rate[0]], marker=marker, color=colour, ms=6, mec="white", mew=0.8)
        low = min(low, float(rate[0]))
    ax.set_xscale("log")
    ax.set_ylim(max(0.0, low - 0.05), 1.005)
    finish_axes(ax, "rank k (candidate list position, log scale)", "identification rate (mate within rank k)",
                title, "lower right")
    return _png(fig)


def det_figure(entries: Sequence[tuple[str, IdRun]], colour_map: dict[str, tuple[str, str]], title: str) -> bytes:
    """Identification DET: FNIR(T) against FPIR(T) on normal-deviate axes, for L = 1
    (solid) and the run's L (dashed). Rates of 0 are drawn on the axis edges."""
    from scipy.stats import norm

    from bench.report.plots import _figure, _png, finish_axes, probit_axes, visible_points

    n_non = max(int((~r.mated).sum()) for _, r in entries)
    n_mat = max(int(r.mated.sum()) for _, r in entries)
    x_lo, x_hi, y_lo, y_hi = 0.5 / max(n_non, 1), 0.95, 0.5 / max(n_mat, 1), 0.95
    fig = _figure(4.6, 4.2)
    ax = fig.add_subplot()
    for label, run in entries:
        if run.mated.all() or not run.mated.any():
            continue  # FPIR or FNIR undefined
        colour, _ = colour_map[label]
        for rank, style in sorted({(1, "-"), (run.candidates, "--")}):
            c = run.curve(rank)
            fpir, fnir = visible_points(c.fpir, c.fnir)
            ax.plot(norm.ppf(np.clip(fpir, x_lo, x_hi)), norm.ppf(np.clip(fnir, y_lo, y_hi)), ls=style,
                    color=colour, lw=1.6 if style == "-" else 1.1,
                    label=f"{label}, L = {rank}" if style == "-" or rank > 1 else None)
    probit_axes(ax, x_lo, x_hi, y_lo, y_hi)
    finish_axes(ax, "FPIR (%)", "FNIR (%)", title, "upper right", legend_size=7)
    return _png(fig)


def pareto_axes(ax: Any, points: Sequence[tuple[str, float | None, float | None, float | None, float]],
                metric: str, title: str, colour_map: dict[str, tuple[str, str]] | None = None) -> None:
    """Accuracy against search time per probe (log axis), one curve per system joining its
    budgets: ``points`` are (system, search seconds, rank-1, FNIR at FPIR = 1 %, budget);
    ``metric`` "rank1" or "fnir". The front of the best points (faster and at least as
    accurate than every other) is drawn as a grey band."""
    from bench.report.plots import colours, finish_axes

    col = 2 if metric == "rank1" else 3
    usable = [p for p in points if p[1] and p[col] is not None]
    if not usable:
        ax.text(0.5, 0.5, "no resolvable value", ha="center", va="center", transform=ax.transAxes, fontsize=8)
        ax.set_title(title, fontsize=9)
        return
    cmap = colour_map or colours([p[0] for p in usable])
    for system in sorted({p[0] for p in usable}):
        own = sorted((p for p in usable if p[0] == system), key=lambda p: p[1])
        colour, marker = cmap[system]
        ax.plot([p[1] for p in own], [100 * p[col] for p in own], color=colour, marker=marker, lw=1.4, ms=5,
                mec="white", mew=0.6, label=system)
        for p in own:
            if p[4] < 1:
                ax.annotate(f"{100 * p[4]:g} %", (p[1], 100 * p[col]), fontsize=6, xytext=(3, 3),
                            textcoords="offset points", color=colour)
    better = (lambda a, b: a >= b) if metric == "rank1" else (lambda a, b: a <= b)
    front, best = [], None
    for p in sorted(usable, key=lambda p: p[1]):
        if best is None or better(p[col], best) and p[col] != best:
            front.append(p)
            best = p[col]
    if len(front) > 1:
        ax.step([p[1] for p in front], [100 * p[col] for p in front], where="post", color="0.7", lw=5, alpha=0.35,
                zorder=0, label="Pareto front")
    ax.set_xscale("log")
    _decade_ticks(ax)
    ylabel = "rank-1 identification rate (%)" if metric == "rank1" else "FNIR at FPIR = 1 % (%)"
    finish_axes(ax, "search CPU seconds per probe, one thread (log)", ylabel, title,
                "lower right" if metric == "rank1" else "upper right", legend_size=6.5)


def _decade_ticks(ax: Any) -> None:
    """Label powers of ten only on a log axis (minor labels run together on narrow panels)."""
    from matplotlib.ticker import NullFormatter

    ax.xaxis.set_minor_formatter(NullFormatter())


def hit_rate_axes(ax: Any, curves: Sequence[tuple[str, Sequence[float], Sequence[float | None]]],
                  oracles: Sequence[tuple[str, Sequence[float], float]], title: str) -> None:
    """Hit rate against penetration (log axis): each index's curve up to its budget, and
    the oracle curve of an exhaustive run (``(label, needed penetration per mated search,
    the penetration up to which it is known)``), dashed."""
    from bench.metrics.identification import hit_rate_curve
    from bench.report.plots import colours, finish_axes

    cmap = colours([c[0] for c in curves] + [o[0] for o in oracles])
    for label, ps, rates in curves:
        xs = [p for p, r in zip(ps, rates) if r is not None]
        ax.plot(xs, [100 * r for r in rates if r is not None], color=cmap[label][0], marker=cmap[label][1], ms=4,
                lw=1.4, label=label)
    for label, needed, known in oracles:
        finite = np.asarray(needed, dtype=np.float64)
        xs = np.unique(np.concatenate([finite[np.isfinite(finite)], [known]]))
        xs = xs[xs <= known]
        ax.step(xs, 100 * hit_rate_curve(finite, xs), where="post", color="black", ls="--", lw=1.2, label=label)
    ax.set_xscale("log")
    _decade_ticks(ax)
    ax.set_ylim(0, 101)
    finish_axes(ax, "penetration rate (share of the gallery passed on, log)", "hit rate (mate among the candidates, %)",
                title, "lower right", legend_size=6.5)


def pareto_figure(entries: Sequence[tuple[str, IdRun]], title: str) -> bytes:
    """Rank-1 and FNIR at FPIR = 1 % against search time per probe, one curve per system."""
    from bench.report.plots import _figure, _png

    points = []
    for _, run in entries:
        op = (run.metrics["fnir_at_fpir"].get("rank1") or {}).get("0.01") or {}
        points.append((run.system, (run.metrics.get("speed") or {}).get("median_search_cpu_seconds"),
                       run.metrics["rank_identification_rate"].get("1"), op.get("fnir"), run.budget))
    fig = _figure(8.6, 4.0)
    pareto_axes(fig.add_subplot(1, 2, 1), points, "rank1", f"Rank-1 against search time, {title}")
    pareto_axes(fig.add_subplot(1, 2, 2), points, "fnir", f"FNIR against search time, {title}")
    return _png(fig)


def hit_rate_figure(entries: Sequence[tuple[str, IdRun]], title: str) -> bytes:
    from bench.metrics.identification import hit_rate_curve
    from bench.report.plots import _figure, _png

    curves, oracles = [], []
    for label, run in entries:
        needed = run.hit_rate_needed()
        if run.index:
            ps = [p for p in _PENETRATIONS if p <= run.budget] + [run.budget]
            curves.append((label, ps, [float(x) for x in hit_rate_curve(needed, ps)]))
        else:
            oracles.append((f"oracle from {label}", needed,
                            run.candidates / int(run.manifest["protocol"]["n_gallery_subjects"])))
    fig = _figure(4.6, 4.2)
    hit_rate_axes(fig.add_subplot(), curves, oracles, f"Hit rate against penetration, {title}")
    return _png(fig)


# ------------------------------------------------------------------ tables
def _pct(v: float | None, digits: int = 2) -> str:
    return "-" if v is None else f"{100 * v:.{digits}f}"


def _fnir_text(op: dict[str, Any] | None) -> tuple[str, str]:
    """(value, reason) of an FNIR-at-FPIR entry of metrics.json."""
    if not op:
        return "-", ""
    if op.get("fnir") is None:
        return "unresolvable", str(op.get("reason") or "")
    return _pct(op["fnir"]), str(op.get("reason") or "")


def summarise(run: IdRun, label: str) -> dict[str, Any]:
    """The row of one run: accuracy, speed, memory, provenance."""
    m, t = run.metrics, run.timing
    lat, thr, mem = m.get("speed") or {}, t.get("throughput") or {}, t.get("memory") or {}
    L = run.candidates
    ranks = {k: m["rank_identification_rate"].get(k) for k in ("1", "10", str(L))}
    fnir = {f"rank{r}@{f}": (m["fnir_at_fpir"].get(f"rank{r}") or {}).get(f) for r in (1, L) for f in FPIR_SHOWN}
    man = run.manifest
    return {
        "run": str(run.path), "label": label, "protocol": man["protocol"], "candidates": L,
        "metrics": m,
        "rank_identification_rate": ranks,
        "fnir_at_fpir": fnir,
        "speed": {
            "median_search_seconds": lat.get("median_search_seconds"),
            "median_search_cpu_seconds": lat.get("median_search_cpu_seconds"),
            "comparisons_per_second_per_core": lat.get("comparisons_per_second_per_core"),
            "gallery_prepare_ms_per_template": None if lat.get("gallery_prepare_seconds_per_template") is None
            else 1e3 * lat["gallery_prepare_seconds_per_template"],
            "searches_per_second": thr.get("searches_per_second"),
            "workers": thr.get("slots"),
            "harness_cpu_share": thr.get("harness_cpu_share"),
        },
        "memory": {"store_bytes_per_template": mem.get("store_bytes_per_template"),
                   "peak_worker_rss_bytes": mem.get("peak_worker_rss_bytes")},
        "provenance": {k: man.get(k) for k in ("created", "finished", "templates", "matcher", "search", "backend",
                                                "environment")},
    }


def _row_cells(s: dict[str, Any]) -> list[str]:
    m, sp, L = s["metrics"], s["speed"], s["candidates"]
    cells = [f"{m['n_searches']:,} ({m['n_mated']:,} mated)", f"{m['gallery_templates']:,}"]
    cells += [_pct(s["rank_identification_rate"][k]) for k in ("1", "10", str(L))]
    cells += [_fnir_text(s["fnir_at_fpir"][f"rank1@{f}"])[0] for f in FPIR_SHOWN]
    cells.append(_pct(m.get("penetration_rate"), 1))
    med, cpu = sp["median_search_seconds"], sp["median_search_cpu_seconds"]
    cells.append("-" if med is None else f"{med:.3g} [{cpu:.3g}]")
    cps = sp["comparisons_per_second_per_core"]
    cells.append("-" if cps is None else f"{cps:,.0f}")
    sps = sp["searches_per_second"]
    cells.append("-" if sps is None else f"{sps:.3g} ({sp['workers']})")
    return cells


def _headers(L_values: set[int]) -> list[str]:
    L = "L" if len(L_values) != 1 else str(next(iter(L_values)))
    return ["searches", "gallery templates", "rank-1 %", "rank-10 %", f"rank-{L} %", "FNIR % at FPIR = 1 % (L = 1)",
            "FNIR % at FPIR = 10 % (L = 1)", "penetration %", "search s, median [CPU]", "comparisons/s per core",
            "searches/s (workers)"]


# ------------------------------------------------------------------ writing
def write_identification_report(runs: Sequence[Path], out: Path) -> Path:
    """Write the report of identification ``runs`` into ``out``; return report.html's path."""
    from bench.report.html import render
    from bench.report.plots import colours

    paths = list(dict.fromkeys(Path(r).resolve() for r in runs))
    data = [load_id_run(p) for p in paths]
    out = Path(out)
    files = ReportOutput(out, ("report.html", "report.md", "summary.json", "cmc.csv", "det.csv", "hit_rate.csv"))
    (out / "figures").mkdir(parents=True, exist_ok=True)
    labels = display_labels(data)
    colour_map = colours(list(labels.values()))
    groups: dict[str, list[IdRun]] = {}
    for d in data:
        groups.setdefault(d.protocol_key, []).append(d)
    summaries = {str(d.path): summarise(d, labels[str(d.path)]) for d in data}

    md = ["# FingerBench identification report", ""]
    notes = []
    if len(groups) > 1:
        notes.append(f"These runs use {len(groups)} different protocols: each is reported in its own section "
                     f"and curves are never overlaid across them.")
        md += [notes[0], ""]
    page_groups: list[dict[str, Any]] = []
    cmc_rows: list[list[Any]] = []
    det_rows: list[list[Any]] = []
    hit_rows: list[list[Any]] = []
    for gi, (key, members) in enumerate(sorted(groups.items(), key=lambda kv: kv[1][0].manifest["protocol"]["name"])):
        members = sorted(members, key=lambda d: labels[str(d.path)])
        p = members[0].manifest["protocol"]
        title = f"{p['name']}"
        gid = f"g{gi + 1}"
        sub = (f"{p['n_gallery_templates']:,} gallery templates of {p['n_gallery_subjects']:,} subjects; "
               f"{p['n_probes']:,} searches, {p['n_mated_probes']:,} mated and {p['n_nonmated_probes']:,} "
               f"non-mated; protocol sha256 {key[:16]}")
        entries = [(labels[str(d.path)], d) for d in members]
        figs = {"cmc": cmc_figure(entries, colour_map, f"CMC, {title}"),
                "det": det_figure(entries, colour_map, f"Identification DET, {title}")}
        if any(d.index for d in members):  # cascades: the trade-off and the indexes' hit rates
            figs["pareto"] = pareto_figure(entries, title)
            figs["hit-rate"] = hit_rate_figure(entries, title)
        for name, data_png in figs.items():
            files.path(f"figures/{gid}-{name}.png").write_bytes(data_png)
        heads = _headers({d.candidates for d in members})
        rows = [(lab, summaries[str(d.path)]) for lab, d in entries]
        reasons = []
        for lab, s in rows:
            for f in FPIR_SHOWN:
                value, why = _fnir_text(s["fnir_at_fpir"][f"rank1@{f}"])
                if why:
                    reasons.append(f"{lab}, FPIR = {float(f):.0%}: {why}")
        page_groups.append({
            "id": gid, "title": title, "subtitle": sub, "head": heads, "reasons": reasons,
            "rows": [{"label": lab, "colour": colour_map[lab][0], "texts": _row_cells(s)} for lab, s in rows],
            "figures": [[{"data": figs["cmc"], "alt": f"CMC curves, {title}"},
                         {"data": figs["det"], "alt": f"identification DET curves, {title}"}]]
            + ([[{"data": figs["pareto"], "alt": f"accuracy against search time, {title}"},
                 {"data": figs["hit-rate"], "alt": f"hit rate against penetration, {title}"}]]
               if "pareto" in figs else [])})
        md += [f"## {title}", "", sub, "", "| algorithm | " + " | ".join(heads) + " |",
               "|" + "---|" * (len(heads) + 1)]
        md += [f"| {lab} | " + " | ".join(_row_cells(s)) + " |" for lab, s in rows]
        md += [""] + [f"- {r}" for r in reasons] + ([""] if reasons else [])
        md += [f"![CMC](figures/{gid}-cmc.png) ![identification DET](figures/{gid}-det.png)", ""]
        if "pareto" in figs:
            md += [f"![accuracy against search time](figures/{gid}-pareto.png) "
                   f"![hit rate against penetration](figures/{gid}-hit-rate.png)", ""]
        for lab, d in entries:
            needed = d.hit_rate_needed()
            ps = [p for p in _PENETRATIONS if p <= d.budget] if d.index else \
                [p for p in _PENETRATIONS if p <= d.candidates / int(d.manifest["protocol"]["n_gallery_subjects"])]
            for p, h in zip(ps, hit_rate_curve(needed, ps)):
                hit_rows.append([str(d.path), lab, "index" if d.index else "oracle", p, float(h)])
            for k, rate in enumerate(d.metrics.get("cmc") or [], 1):
                cmc_rows.append([str(d.path), lab, k, rate])
            if d.mated.any() and not d.mated.all():
                for rank in sorted({1, d.candidates}):
                    c = d.curve(rank)
                    for thr, fp, fn in zip(c.thresholds, c.fpir, c.fnir):
                        det_rows.append([str(d.path), lab, rank, float(thr), float(fp), float(fn)])
    subtitle = (f"{len(data)} run{'s' if len(data) != 1 else ''}, "
                f"{len(groups)} protocol{'s' if len(groups) != 1 else ''}")
    page = render("identification.html", title="FingerBench identification report", subtitle=subtitle,
                  notes=notes, warnings=[], groups=page_groups, provenance=_provenance(data, labels),
                  footer="Made by FingerBench from the stored search tables of the runs; summary.json, cmc.csv, "
                         "det.csv and hit_rate.csv hold the same numbers.")
    (out / "report.html").write_text(page, encoding="utf-8")
    (out / "report.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    write_json(out / "summary.json", {"schema": "fingerbench-identification-report", "version": 1,
                                      "runs": [summaries[str(d.path)] for d in data]})
    _csv(out / "cmc.csv", ["run", "label", "rank", "identification_rate"], cmc_rows)
    _csv(out / "det.csv", ["run", "label", "L", "threshold", "fpir", "fnir"], det_rows)
    _csv(out / "hit_rate.csv", ["run", "label", "curve", "penetration", "hit_rate"], hit_rows)
    files.finish()
    return out / "report.html"


def _csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def _provenance(data: Sequence[IdRun], labels: dict[str, str]) -> list[dict[str, Any]]:
    rows = []
    for d in data:
        m = d.manifest
        env = m.get("environment") or {}
        mach, src = env.get("machine") or {}, env.get("source") or {}
        tpl = m.get("templates") or {}
        parts = []
        if "synthetic" in tpl:
            parts.append(f"synthetic minutiae model, seed {tpl['synthetic'].get('seed')}")
        if "dataset" in tpl:
            ds = tpl["dataset"]
            parts.append(f"dataset {ds.get('name')} (images sha256 {str(ds.get('sha256'))[:16]})")
        if "extractor" in tpl:
            e = tpl["extractor"]
            parts.append(f"extractor {e.get('name')} {e.get('version')} {json.dumps(e.get('params') or {})}")
        mt = m["matcher"]
        rows.append({
            "label": labels[str(d.path)], "run": str(d.path), "created": str(m.get("created") or ""),
            "templates": parts, "matcher": f"{mt.get('name')} {mt.get('version')}",
            "matcher_params": json.dumps(mt.get("params") or {}), "search": json.dumps(m.get("search") or {}),
            "backend": json.dumps(m.get("backend") or {}), "cpu": str(mach.get("cpu", "unknown")),
            "cores": str(mach.get("cores", "?")),
            "commit": (src.get("commit") or "unknown")[:12] + (" (uncommitted changes)" if src.get("dirty") else ""),
            "packages": ", ".join(f"{k} {v}" for k, v in (env.get("packages") or {}).items())})
    return rows
