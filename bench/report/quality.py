"""The image-quality part of a report: the quality distribution of a dataset, DET curves per
quality band, and the error-versus-reject characteristic (one curve per algorithm, with the
ideal curve), as figures and a table. Numbers come from the runs' summaries
(:func:`bench.metrics.summary.quality_part`); curves are drawn from the records with the
functions of :mod:`bench.metrics.quality`.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from bench import metrics as M
from bench.metrics import quality as Q
from bench.report import plots
from bench.report.rundata import RunData
from bench.report.tables import PaperTable, caption_context, num, pct

#: Line styles of the quality bands, lowest band first.
_BAND_COLOURS = ("#B2182B", "#EF8A62", "#999999", "#67A9CF", "#2166AC", "#000000")


def quality_runs(entries: Sequence[tuple[str, RunData]]) -> list[tuple[str, RunData]]:
    """The (label, run) pairs whose run assessed image quality."""
    return [(label, r) for label, r in entries if r.quality is not None and r.summary.get("quality")]


def plugin_text(run: RunData) -> str:
    q = run.summary["quality"]
    return f"{q['plugin']}, {q['version']}"


def distribution_figure(run: RunData, title: str):
    """Histogram of the per-image quality of a run's images, failures counted in the legend."""
    q = run.summary["quality"]
    values = run.quality["quality"].to_numpy(float)
    values = values[np.isfinite(values)]
    lo, hi = q["score_range"]
    fig = plots._figure(4.6, 3.2)
    ax = fig.add_subplot()
    bins = np.linspace(lo, hi, 21)
    failed = q["images"]["n"] - q["images"]["n_assessed"]
    ax.hist(values, bins=bins, color="#0072B2", alpha=0.8,
            label=f"{values.size} images" + (f"; {failed} without a score" if failed else ""))
    for edge in q["band_edges"][1:-1]:
        ax.axvline(edge, color="#888888", lw=0.6, ls=":")
    if not values.size:
        counts = ", ".join(f"{k}: {v}" for k, v in sorted(q["images"]["failures_by_status"].items()))
        ax.text(0.5, 0.5, f"no image has a quality score\n({counts})", transform=ax.transAxes, ha="center",
                va="center", fontsize=8)
    ax.set_xlim(lo, hi)
    plots.finish_axes(ax, f"quality ({plugin_text(run)})", "images", title, "upper left")
    return fig


def erc_figure(entries: Sequence[tuple[str, RunData]], colour_map: dict[str, tuple[str, str]], title: str):
    """Error-versus-reject characteristics: FNMR at the run's fixed threshold against the
    fraction of genuine comparisons set aside (lowest pair quality first), one step curve per
    algorithm, with the ideal curve of each distinct starting FNMR (dotted)."""
    fig = plots._figure(4.6, 3.8)
    ax = fig.add_subplot()
    starts: set[float] = set()
    x_max = 0.0
    for label, run in entries:
        erc = run.summary["quality"]["erc"]
        if not erc:
            continue
        x = np.asarray(erc["curve"]["reject_fraction"], dtype=float)
        y = np.asarray(erc["curve"]["fnmr"], dtype=float)
        colour, marker = colour_map[label]
        ax.step(x * 100, y * 100, where="post", color=colour, lw=1.6, label=label)
        starts.add(round(float(erc["fnmr_start"]), 12))
        x_max = max(x_max, float(x[-1]))
    x_max = min(max(x_max, 0.05), 0.9)
    for k, start in enumerate(sorted(starts)):
        xs = np.linspace(0, x_max, 200)
        ax.plot(xs * 100, Q.ideal_fnmr(start, xs) * 100, ls=":", color="#555555", lw=1.0,
                label="ideal" if k == 0 else None)
    ax.set_xlim(0, x_max * 100)
    ax.set_ylim(bottom=0)
    plots.finish_axes(ax, "genuine comparisons set aside, lowest quality first (%)", "FNMR (%)", title,
                      "upper right")
    return fig


def bands_figure(entries: Sequence[tuple[str, RunData]], title: str):
    """DET curves per quality band of the pair quality, one panel per algorithm; a band is
    drawn where it has both genuine and impostor comparisons, its ends marked (a band without
    any error is one mark in the corner)."""
    from scipy.stats import norm

    n = len(entries)
    fig = plots._figure(4.2 * min(n, 3), 3.9 * ((n + 2) // 3))
    x_lo, x_hi, y_lo, y_hi = plots.det_axes_limits(entries)
    for k, (label, run) in enumerate(entries):
        ax = fig.add_subplot((n + 2) // 3, min(n, 3), k + 1)
        edges = run.summary["quality"]["band_edges"]
        band = Q.band_index(run.pair_quality(), edges)
        eff = run.comparisons["effective"].to_numpy(float)
        g = run.genuine
        drawn = 0
        for i, name in enumerate(Q.band_labels(edges)):
            gs, im = eff[(band == i) & g], eff[(band == i) & ~g]
            if not (gs.size and im.size):
                continue
            det = M.det_curve(gs, im)
            fmr, fnmr = plots.visible_points(det.fmr, det.fnmr)
            ax.plot(norm.ppf(np.clip(fmr, x_lo, x_hi)), norm.ppf(np.clip(fnmr, y_lo, y_hi)),
                    color=_BAND_COLOURS[i % len(_BAND_COLOURS)], lw=1.4, marker="o", ms=3, markevery=[0, -1],
                    clip_on=False,
                    label=f"quality {name}: {gs.size} / {im.size}")
            drawn += 1
        plots.probit_axes(ax, x_lo, x_hi, y_lo, y_hi)
        if not drawn:
            ax.text(0.5, 0.5, "no band has both genuine and\nimpostor comparisons", transform=ax.transAxes,
                    ha="center", va="center", fontsize=8)
        plots.finish_axes(ax, "FMR (%)", "FNMR (%)", label, "upper right", legend_size=6.5)
    fig.suptitle(title, fontsize=10)
    return fig


def quality_table(group: dict[str, Any], entries: Sequence[tuple[str, RunData]]) -> PaperTable:
    """Per algorithm: the quality plugin, images assessed, the ERC's threshold and its FNMR
    with 0, 5, 10 and 20 % of the genuine comparisons set aside (ideal in brackets), and the
    EER per quality band."""
    first = entries[0][1].summary["quality"]
    band_names = [b["band"] for b in first["bands"]]
    cols = (["algorithm", "quality", "images assessed", "threshold t (FMR %)"]
            + [f"FNMR (%), {100 * f:g} % set aside" for f in Q.REJECT_FRACTIONS]
            + [f"EER (%), quality {b}" for b in band_names])
    rows = []
    for label, run in entries:
        q = run.summary["quality"]
        erc = q["erc"]
        row = [label, plugin_text(run), f"{q['images']['n_assessed']} of {q['images']['n']}"]
        if erc:
            t = num(erc["threshold"], ".4g") if isinstance(erc["threshold"], (int, float)) else str(erc["threshold"])
            row.append(t + ("" if erc.get("fmr_at_threshold") is None else f" (FMR {pct(erc['fmr_at_threshold'])})"))
            row += [f"{pct(a['fnmr'])} [{pct(a['ideal_fnmr'])}]" + ("" if abs(a["reject_fraction"] - a["target"]) < 1e-9
                                                                  else f" at {pct(a['reject_fraction'], 1)}")
                    for a in erc["at"]]
        else:
            row += ["n/a"] * (1 + len(Q.REJECT_FRACTIONS))
        bands = {b["band"]: b for b in q["bands"]}
        row += ["n/a" if bands.get(b, {}).get("eer") is None
                else f"{pct(bands[b]['eer'])} ({bands[b]['n_genuine']} / {bands[b]['n_impostor']})"
                for b in band_names]
        rows.append(row)
    start = first["erc"]["fnmr_target"] if first["erc"] else Q.DEFAULT_ERC_FNMR
    return PaperTable(
        f"{group['id']}-quality",
        f"Image quality and error: FNMR at a threshold t fixed where it is {100 * start:g} % without rejection, "
        f"as the genuine comparisons of lowest pair quality (the lower of the two images') are set aside "
        f"(error-versus-reject characteristic, Grother and Tabassi 2007; ISO/IEC 29794-1), the ideal value in "
        f"brackets (where ties of quality stop short of a fraction, the fraction reached follows 'at'); "
        f"EER per band of pair quality with its genuine / impostor comparisons; point estimates, without "
        f"intervals. " + caption_context(group),
        cols, rows)
