"""A first, simple report: a Markdown summary table and a DET plot (PNG).

Both are derived from the stored records of run directories, so a report can be made
again at any time without re-running extraction or matching.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from bench import metrics as M
from bench.evaluate import comparison_status, evaluate_run, load_scores
from bench.store import RunDir


def _pct(v: Any) -> str:
    return "n/a" if v is None else f"{100 * v:.2f}"


def _point(acc: dict[str, Any], key: str) -> str:
    p = acc["operating_points"].get(key, {})
    if p.get("value") is None:
        return "unresolvable"
    return _pct(p["value"])


def _label(m: dict[str, Any]) -> str:
    return f"{m['extractor']} + {m['matcher']}"


def run_curves(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(FMR, FNMR) points of a run's DET curve, failures counted as errors (FVC rules)."""
    run = RunDir(run_dir)
    manifest = run.read_manifest()
    df = load_scores(run)
    raw = pd.to_numeric(df["score"], errors="coerce").to_numpy(float)
    scores = M.as_similarity(raw, bool(manifest["matcher"].get("higher_is_better", True)))
    genuine = df["genuine"].astype(int).to_numpy().astype(bool)
    eff = M.apply_failures(scores, genuine, comparison_status(df["status"]))
    curve = M.det_curve(eff[genuine], eff[~genuine])
    return np.asarray(curve["fmr"]), np.asarray(curve["fnmr"])


def plot_det(runs: Sequence[Path], labels: Sequence[str], path: Path, title: str = "DET") -> Path:
    """DET curves on normal-deviate axes, one line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.stats import norm

    ticks = np.array([1e-4, 1e-3, 1e-2, 0.05, 0.2, 0.5, 0.8])
    lo, hi = 1e-4, 0.8
    fig, ax = plt.subplots(figsize=(5.5, 5.0), dpi=120)
    for run, label in zip(runs, labels):
        fmr, fnmr = run_curves(run)
        x = norm.ppf(np.clip(fmr, lo / 2, hi))
        y = norm.ppf(np.clip(fnmr, lo / 2, hi))
        ax.step(x, y, where="pre", label=label)
    ax.set_xticks(norm.ppf(ticks), [f"{t:g}" for t in ticks * 100])
    ax.set_yticks(norm.ppf(ticks), [f"{t:g}" for t in ticks * 100])
    ax.set_xlim(norm.ppf(lo / 2), norm.ppf(hi))
    ax.set_ylim(norm.ppf(lo / 2), norm.ppf(hi))
    ax.plot([norm.ppf(lo / 2), norm.ppf(hi)], [norm.ppf(lo / 2), norm.ppf(hi)], ":", color="gray", lw=0.8)
    ax.set_xlabel("FMR (%)")
    ax.set_ylabel("FNMR (%)")
    ax.set_title(title)
    ax.grid(True, lw=0.3)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_report(runs: Sequence[Path], out: Path) -> Path:
    """Write ``report.md`` and ``det.png`` into ``out``; return the Markdown path."""
    runs = [Path(r) for r in runs]
    metrics = [evaluate_run(r) for r in runs]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    groups = {(m["dataset"], m["protocol"]) for m in metrics}
    lines = ["# FingerBench report", ""]
    if len(groups) > 1:
        lines += ["Runs on different datasets or protocols are listed separately, not overlaid.", ""]
    for dataset, protocol in sorted(groups):
        sel = [(r, m) for r, m in zip(runs, metrics) if (m["dataset"], m["protocol"]) == (dataset, protocol)]
        acc0 = sel[0][1]["accuracy"]
        lines += [f"## {dataset}, protocol {protocol}", "",
                  f"{acc0['n_genuine']} genuine and {acc0['n_impostor']} impostor comparisons. "
                  "Rates in %; an operating point finer than 1/N impostor comparisons is unresolvable.", "",
                  "| extractor + matcher | EER | EER interval | EER* | FMR100 | FMR1000 | FMR10000 | ZeroFMR "
                  "| REJ_ENROLL | REJ_NGRA | REJ_NIRA | extraction ms (median) | comparisons/s/core |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for _, m in sel:
            acc = m["accuracy"]
            star = acc.get("eer_star") or {}
            ext = m["speed"]["extraction_ms"].get("median")
            cps = m["speed"].get("comparisons_per_second_per_core")
            lines.append(
                f"| {_label(m)} | {_pct(acc['eer'])} | [{_pct(acc['eer_low'])}, {_pct(acc['eer_high'])}] "
                f"| {_pct(star.get('eer'))} | {_point(acc, 'fmr100')} | {_point(acc, 'fmr1000')} "
                f"| {_point(acc, 'fmr10000')} | {_point(acc, 'zero_fmr')} | {m['enrolment']['rej_enroll']} "
                f"| {acc['rej_ngra']} | {acc['rej_nira']} | {'n/a' if ext is None else f'{ext:.1f}'} "
                f"| {'n/a' if cps is None else f'{cps:,.0f}'} |"
            )
        name = f"det-{dataset}-{protocol}.png" if len(groups) > 1 else "det.png"
        plot_det([r for r, _ in sel], [_label(m) for _, m in sel], out / name, f"DET: {dataset}, protocol {protocol}")
        lines += ["", f"![DET curve]({name})", ""]
    lines += ["## Provenance", ""]
    for r, m in zip(runs, metrics):
        man = RunDir(r).read_manifest()
        src = man["environment"].get("source", {})
        lines.append(
            f"- `{r.name}`: dataset sha256 {man['dataset']['sha256'][:16]}..., "
            f"{man['extractor']['name']} {man['extractor']['version']} {man['extractor']['params']}, "
            f"{man['matcher']['name']} {man['matcher']['version']} {man['matcher']['params']}, "
            f"commit {src.get('commit') or 'unknown'}, {man['environment']['machine']['cpu']}"
        )
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
