"""Figures of a report, computed from runs and drawn with matplotlib (Agg, lazily).

Every figure function returns a :class:`matplotlib.figure.Figure`; :func:`render` writes it
as PNG (embedded in the HTML) or as a vector file (SVG, PDF) for papers. Figures are built
with :class:`matplotlib.figure.Figure` directly, not through pyplot, so no global state or
GUI backend is involved.
Computing (curves, Pareto fronts) is separate from drawing, as in scikit-learn's displays.
"""

from __future__ import annotations

import io
from typing import Any, Sequence

import numpy as np

from bench import metrics as M
from bench.report.rundata import RunData

# Colour-blind-safe palette (Okabe & Ito), assigned to algorithms in a fixed order so an
# algorithm has the same colour in every figure of a report.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
DPI = 110


def colours(labels: Sequence[str]) -> dict[str, tuple[str, str]]:
    """A (colour, marker) per label, stable for a given set of labels."""
    return {lab: (PALETTE[i % len(PALETTE)], MARKERS[i % len(MARKERS)])
            for i, lab in enumerate(sorted(set(labels)))}


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)  # the Agg raster backend, whatever backend pyplot may use elsewhere
    return fig


#: The formats a report writes each figure in: PNG for the HTML page, SVG and PDF for papers.
FIGURE_FORMATS = ("png", "svg", "pdf")
# Metadata that would make two renderings of one figure differ (dates) or name the software.
_METADATA = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None},
             "pdf": {"CreationDate": None, "Creator": None, "Producer": None}}


def render(fig, fmt: str = "png") -> bytes:
    """``fig`` as PNG, SVG or PDF bytes; the same figure gives the same bytes every time."""
    import matplotlib

    if fmt not in FIGURE_FORMATS:
        raise ValueError(f"figure format {fmt!r}: one of {FIGURE_FORMATS}")
    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "fingerbench", "svg.fonttype": "path", "pdf.fonttype": 42}):
        fig.savefig(buf, format=fmt, dpi=DPI, metadata=_METADATA[fmt])
    return buf.getvalue()


def _png(fig) -> bytes:
    return render(fig, "png")


def _style(ax) -> None:
    ax.grid(True, lw=0.4, color="#d0d0d0")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=8)


def finish_axes(ax, xlabel: str, ylabel: str, title: str, legend_loc: str, legend_size: float = 7.5) -> None:
    """Labels, title, the report's style and a frameless legend."""
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.set_title(title, fontsize=10)
    _style(ax)
    ax.legend(fontsize=legend_size, loc=legend_loc, frameon=False)


# --------------------------------------------------------------------------- DET / ROC
DET_TICKS = np.array([1e-5, 1e-4, 1e-3, 1e-2, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.95])
#: The lowest rate a DET axis goes down to (0.01 % is the finest FVC operating point, FMR10000).
DET_FLOOR = 1e-4


def _tick_label(p: float) -> str:
    v = 100 * p
    return f"{v:g}" if v >= 0.01 else f"{v:.0e}".replace("e-0", "e-")


def _lower_limit(n: int) -> float:
    """The lower end of a probit axis for rates with denominator ``n``: the tick at or below
    half a step under the finest rate (1/n) the data can show, so that the lowest points and
    an EER marker there sit above a labelled tick, never at an unlabelled edge; not below
    :data:`DET_FLOOR` (0.01 %), where the data reach it."""
    half = 0.5 / max(n, 1)
    below = DET_TICKS[DET_TICKS <= half]
    lo = float(below[-1]) if below.size else float(DET_TICKS[0])
    return max(lo, min(DET_FLOOR, half))


def det_axes_limits(entries: Sequence[tuple[str, RunData]]) -> tuple[float, float, float, float]:
    """Probit-axis limits: from a labelled tick below the finest rate the data can show
    (see :func:`_lower_limit`) to 95 %."""
    ni = max(int((~r.genuine).sum()) for _, r in entries)
    ng = max(int(r.genuine.sum()) for _, r in entries)
    return _lower_limit(ni), 0.95, _lower_limit(ng), 0.95


def visible_points(fmr: np.ndarray, fnmr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The DET points worth drawing on probit axes, in threshold order: all points with
    both rates above 0, plus the ZeroFMR and ZeroFNMR ends (best point with FMR = 0,
    best with FNMR = 0), which are drawn on the axis edges. The other points with a rate
    of 0 would only draw lines along the edges."""
    keep = (fmr > 0) & (fnmr > 0)
    zero_fmr = np.flatnonzero(fmr == 0)
    if zero_fmr.size:
        keep[zero_fmr[0]] = True          # thresholds ascending: lowest FNMR comes first
    zero_fnmr = np.flatnonzero(fnmr == 0)
    if zero_fnmr.size:
        keep[zero_fnmr[-1]] = True        # lowest FMR with FNMR = 0
    return fmr[keep], fnmr[keep]


def det_figure(entries: Sequence[tuple[str, RunData]], colour_map: dict[str, tuple[str, str]], title: str) -> bytes:
    """DET curves (FNMR against FMR) on normal-deviate axes, one line per (label, run),
    EER marked.

    Rates of 0 cannot be drawn on probit axes; they are drawn on the lower edge.
    """
    from scipy.stats import norm

    x_lo, x_hi, y_lo, y_hi = det_axes_limits(entries)
    fig = _figure(4.6, 4.2)
    ax = fig.add_subplot()
    for label, run in entries:
        gen, imp = run.effective_scores()
        curve = M.error_curve(gen, imp)
        det = curve.det()
        colour, marker = colour_map[label]
        fmr, fnmr = visible_points(det.fmr, det.fnmr)
        x = norm.ppf(np.clip(fmr, x_lo, x_hi))
        y = norm.ppf(np.clip(fnmr, y_lo, y_hi))
        ax.plot(x, y, color=colour, lw=1.6, label=label)
        e = curve.eer()
        ax.plot(norm.ppf(np.clip(e.eer, x_lo, x_hi)), norm.ppf(np.clip(e.eer, y_lo, y_hi)),
                marker=marker, color=colour, ms=6, mec="white", mew=0.8, zorder=5, clip_on=False)
    probit_axes(ax, x_lo, x_hi, y_lo, y_hi)
    lo, hi = max(norm.ppf(x_lo), norm.ppf(y_lo)), min(norm.ppf(x_hi), norm.ppf(y_hi))
    ax.plot([lo, hi], [lo, hi], ls=":", color="#888888", lw=0.8)
    finish_axes(ax, "FMR (%)", "FNMR (%)", title, "upper right")
    return fig


def probit_axes(ax, x_lo: float, x_hi: float, y_lo: float, y_hi: float) -> None:
    """Normal-deviate axes between these rates, ticks labelled in %."""
    from scipy.stats import norm

    for setter, lo, hi in ((ax.set_xticks, x_lo, x_hi), (ax.set_yticks, y_lo, y_hi)):
        t = DET_TICKS[(DET_TICKS >= lo) & (DET_TICKS <= hi)]
        setter(norm.ppf(t), [_tick_label(v) for v in t])
    ax.set_xlim(norm.ppf(x_lo), norm.ppf(x_hi))
    ax.set_ylim(norm.ppf(y_lo), norm.ppf(y_hi))


def roc_figure(entries: Sequence[tuple[str, RunData]], colour_map: dict[str, tuple[str, str]],
               title: str) -> bytes:
    """ROC curves: 1 - FNMR against FMR (log scale), one line per (label, run)."""
    x_lo = 0.5 / max(max(int((~r.genuine).sum()) for _, r in entries), 1)
    fig = _figure(4.6, 4.2)
    ax = fig.add_subplot()
    low_tmr = 1.0
    for label, run in entries:
        gen, imp = run.effective_scores()
        det = M.error_curve(gen, imp).det()
        fmr, fnmr = visible_points(det.fmr, det.fnmr)
        tmr = 1 - fnmr
        low_tmr = min(low_tmr, float(np.min(tmr[fmr <= 0.5], initial=1.0)))
        colour, _ = colour_map[label]
        ax.plot(np.clip(fmr, x_lo, 1), tmr, color=colour, lw=1.6, label=label)
    ax.set_xscale("log")
    ax.set_xlim(x_lo, 1)
    ticks = [t for t in (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0) if t >= x_lo]
    ax.set_xticks(ticks, [_tick_label(t) for t in ticks])
    ax.set_ylim(max(0.0, low_tmr - 0.05), 1.01)
    finish_axes(ax, "FMR (%, log scale; 0 drawn on the left edge)", "1 - FNMR", title, "lower right")
    return fig


# ------------------------------------------------------------------ score distributions
def scores_figure(entries: Sequence[tuple[str, RunData]]) -> bytes:
    """Per (label, run): genuine and impostor score histograms, and FMR(t) / FNMR(t)."""
    n = len(entries)
    fig = _figure(9.2, 2.3 * n + 0.2)
    axes = fig.subplots(n, 2, squeeze=False)
    for row, (label, run) in zip(axes, entries):
        c = run.comparisons
        ok = c["kind"].to_numpy(str) == "ok"
        g = c["genuine"].to_numpy(bool)
        s = c["similarity"].to_numpy(float)
        sign = 1.0 if run.higher_is_better else -1.0
        gen, imp = sign * s[ok & g], sign * s[ok & ~g]
        both = np.concatenate((gen, imp))
        ax = row[0]
        note = ""
        if both.size:
            lo, hi = np.min(both), np.percentile(both, 99.5)
            if hi <= lo:
                hi = lo + 1
            clipped = int((both > hi).sum())
            if clipped:
                note = f"; {clipped} above {hi:.3g} not shown"
            bins = np.linspace(lo, hi, 41)
            hi_imp = ax.hist(imp, bins=bins, density=True, alpha=0.55, color="#D55E00",
                             label=f"impostor ({imp.size})")[0] if imp.size else np.zeros(1)
            hi_gen = ax.hist(gen, bins=bins, density=True, alpha=0.55, color="#0072B2",
                             label=f"genuine ({gen.size})")[0] if gen.size else np.zeros(1)
            top_imp = float(np.max(hi_imp)) if imp.size else 0.0
            top_gen = float(np.max(hi_gen)) if gen.size else 0.0
            if top_gen > 0 and top_imp > 4 * top_gen:
                # A narrow impostor peak would flatten the genuine histogram: cut it, say so.
                ax.set_ylim(0, 4 * top_gen)
                ax.text(0.5, 0.97, "impostor peak cut off", transform=ax.transAxes, fontsize=7,
                        ha="center", va="top", color="#D55E00")
        failed = int((~ok).sum())
        if failed:
            note += f"; {failed} failed/ghost comparisons not shown"
        ax.set_title(f"{label}: score distributions" + (f"\n({note.lstrip('; ')})" if note else ""),
                     fontsize=8.5, loc="left")
        ax.set_xlabel("raw score" + ("" if run.higher_is_better else " (distance)"), fontsize=8)
        ax.set_ylabel("density", fontsize=8)
        _style(ax)
        ax.legend(fontsize=7, frameon=False)

        ax = row[1]
        gen_e, imp_e = run.effective_scores()
        curve = M.error_curve(gen_e, imp_e)
        t = curve.thresholds
        finite = np.isfinite(t)
        if finite.any():
            tt = sign * t[finite]
            if imp_e.size:
                ax.step(tt, curve.fmr[finite], where="post", color="#D55E00", lw=1.5, label="FMR(t)")
            if gen_e.size:
                ax.step(tt, curve.fnmr[finite], where="post", color="#0072B2", lw=1.5, label="FNMR(t)")
            e = curve.eer() if gen_e.size and imp_e.size else None
            if e is not None and np.isfinite(e.threshold):
                ax.axvline(sign * e.threshold, color="#777777", lw=0.8, ls="--")
                ax.text(sign * e.threshold, 0.95, f" EER {100 * e.eer:.2f}%", fontsize=7, va="top")
            if both.size:
                ax.set_xlim(np.min(both), np.percentile(both, 99.5) if np.ptp(both) else np.min(both) + 1)
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"{label}: FMR(t) and FNMR(t)", fontsize=8.5, loc="left")
        ax.set_xlabel("threshold t", fontsize=8)
        _style(ax)
        ax.legend(fontsize=7, frameon=False, loc="center right")
    return fig


# ------------------------------------------------------------------- accuracy vs speed
def _plain_number(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"


def speed_axis(ax, values: Sequence[float]) -> str:
    """Scale and ticks of a speed axis: log when the values span a factor of 3 or more, with
    ticks written as plain numbers at 1, 2, 5 x 10^k (at 10^k alone when the values span more
    than two decades, so labels never run into each other); otherwise linear, with as many
    digits as the tick step needs, so close values never read "33, 34, 34, 34, 35".
    Returns the scale used ("log" or "linear")."""
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    v = np.asarray([x for x in values if x is not None and np.isfinite(x) and x > 0], dtype=float)
    if v.size and v.max() / v.min() >= 3:
        ax.set_xscale("log")
        wide = np.log10(v.max() / v.min()) > 2
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0,) if wide else (1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: _plain_number(x)))
        ax.xaxis.set_minor_formatter(NullFormatter())
        return "log"
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))
    ax.xaxis.get_major_formatter().set_useOffset(False)
    return "linear"


def pareto_front(cost: Sequence[float], error: Sequence[float]) -> list[int]:
    """Indices of the points no other point beats on both cost and error (lower is
    better for both), ordered by cost. Points with a missing value are never on it."""
    pts = [(c, e, i) for i, (c, e) in enumerate(zip(cost, error))
           if c is not None and e is not None and np.isfinite(c) and np.isfinite(e)]
    pts.sort(key=lambda p: (p[0], p[1]))
    front, best = [], np.inf
    for c, e, i in pts:
        if e < best:
            front.append(i)
            best = e
    return front


def speed_figure(points: Sequence[dict[str, Any]], colour_map: dict[str, tuple[str, str]], title: str) -> bytes:
    """EER against comparisons/s and against extraction time, Pareto front marked.

    ``points``: dicts with ``label``, ``eer``, ``eer_low``/``eer_high`` (interval drawn
    as an error bar, may be None), ``comparisons_per_s`` and ``extraction_ms``.
    """
    fig = _figure(9.2, 3.6)
    axes = fig.subplots(1, 2)
    panels = (("comparisons_per_s", "comparisons / s / core ({scale}, better to the right)", True),
              ("extraction_ms", "extraction ms / image, median ({scale}, better to the left)", False))
    for ax, (key, xlabel, higher_better) in zip(axes, panels):
        xs = [p.get(key) for p in points]
        es = [p.get("eer") for p in points]
        cost = [(-x if higher_better else x) if x else None for x in xs]
        front = pareto_front(cost, es)
        for p, x in zip(points, xs):
            if x is None or p.get("eer") is None:
                continue
            colour, marker = colour_map[p["label"]]
            e = 100 * p["eer"]
            yerr = None
            if p.get("eer_low") is not None and p.get("eer_high") is not None:
                yerr = [[max(e - 100 * p["eer_low"], 0)], [max(100 * p["eer_high"] - e, 0)]]
            ax.errorbar([x], [e], yerr=yerr, fmt=marker, color=colour, ms=7, capsize=3, lw=1,
                        label=p["label"], mec="white", mew=0.8)
        if len(front) > 1:
            fx, fy = zip(*sorted((xs[i], 100 * es[i]) for i in front))
            ax.plot(fx, fy, color="#444444", lw=1, ls="--", zorder=0, label="Pareto front")
        for i in front:
            ax.plot([xs[i]], [100 * es[i]], marker="o", ms=13, mfc="none", mec="#444444", mew=1, zorder=0)
        scale = speed_axis(ax, xs)
        ax.set_xlabel(xlabel.format(scale="log scale" if scale == "log" else "linear scale"), fontsize=8)
        ax.set_ylabel("EER (%) with 95 % interval", fontsize=8)
        ax.margins(x=0.25, y=0.15)
        ax.autoscale_view()
        ax.set_ylim(bottom=max(0.0, ax.get_ylim()[0]))  # an error rate is never below 0 %
        _style(ax)
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        axes[1].legend(handles, labels, fontsize=7, frameon=False, loc="best")
    fig.suptitle(title + " (circled: Pareto-optimal)", fontsize=10)
    return fig
