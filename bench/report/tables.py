"""Report tables: number formatting, the CSV files, and the Markdown report.

Rates are written in percent in Markdown and HTML, and as fractions in CSV and JSON.
"""

from __future__ import annotations

import csv
import html
import re
from pathlib import Path
from typing import Any, Sequence

from bench.report.summary import INDICATOR_NAMES

RATE_INDICATORS = tuple(INDICATOR_NAMES)


def pct(v: float | None, digits: int = 2) -> str:
    return "n/a" if v is None else f"{100 * v:.{digits}f}"


def num(v: float | None, fmt: str = ".1f") -> str:
    return "n/a" if v is None else format(v, fmt)


def value_text(ind: dict[str, Any]) -> str:
    """``3.61`` or ``unresolvable`` / ``n/a`` (never a number for an unresolvable point)."""
    if ind["value"] is None:
        reason = ind.get("reason") or ""
        return "unresolvable" if reason.startswith("unresolvable") else "n/a"
    return pct(ind["value"])


def ci_text(ind: dict[str, Any]) -> str:
    if ind["value"] is None or ind["ci_low"] is None:
        return ""
    return f"[{pct(ind['ci_low'])}, {pct(ind['ci_high'])}]"


def n_text(name: str, ind: dict[str, Any]) -> str:
    """The N an indicator rests on: genuine / impostor comparisons, or images."""
    if name == "rej_enroll":
        return f"{ind['n']:,} images"
    if name == "rej_match":
        return f"{ind['n']:,} comparisons"
    return f"{ind['n_genuine']:,} / {ind['n_impostor']:,}"


def shared_n(name: str, summaries: Sequence[dict[str, Any]]) -> str | None:
    """The N of an indicator when every run of a group has the same, else None."""
    texts = {n_text(name, s["indicators"][name]) for s in summaries}
    return texts.pop() if len(texts) == 1 else None


def reason_notes(summaries: Sequence[dict[str, Any]], labels: dict[str, str]) -> list[str]:
    """Why values are missing or special, one line per distinct reason and set of runs."""
    seen: dict[str, dict[str, list[str]]] = {}
    for s in summaries:
        for name, ind in s["indicators"].items():
            reason = ind.get("reason")
            if not reason:
                continue
            if reason.startswith("unresolvable") and ind.get("n_impostor"):
                n = ind["n_impostor"]
                reason = (f"unresolvable: {n:,} impostor comparisons cannot show an FMR below "
                          f"1/{n:,} = {100 / n:.3g} %")
            seen.setdefault(reason, {}).setdefault(labels[s["run"]], []).append(INDICATOR_NAMES[name])
    everyone = {labels[s["run"]] for s in summaries}
    lines = []
    for reason, by_label in seen.items():
        by_names: dict[tuple[str, ...], list[str]] = {}
        for label, names in by_label.items():
            by_names.setdefault(tuple(dict.fromkeys(names)), []).append(label)
        for names, labs in by_names.items():
            who = "all algorithms" if set(labs) == everyone and len(everyone) > 1 else ", ".join(labs)
            lines.append(f"{', '.join(names)} {reason} ({who})")
    return lines


# ----------------------------------------------------------------------------- CSV
INDICATOR_CSV_FIELDS = ["dataset", "protocol", "extractor", "matcher", "run", "indicator", "value",
                        "ci_low", "ci_high", "n_genuine", "n_impostor", "n", "count", "reason"]
SPEED_CSV_FIELDS = ["dataset", "protocol", "extractor", "matcher", "run", "extraction_ms_median",
                    "extraction_ms_p95", "extraction_n", "comparison_us_median", "comparison_us_p95",
                    "comparison_n", "comparisons_per_s_per_core", "template_bytes_mean", "minutiae_mean"]


def write_csv(summaries: Sequence[dict[str, Any]], out: Path) -> list[Path]:
    """``indicators.csv`` (one row per run and indicator) and ``speed.csv`` (one per run)."""
    ind_path, speed_path = out / "indicators.csv", out / "speed.csv"
    with open(ind_path, "w", newline="") as f:
        w = csv.DictWriter(f, INDICATOR_CSV_FIELDS, lineterminator="\n")
        w.writeheader()
        for s in summaries:
            for name, ind in s["indicators"].items():
                w.writerow({**{k: s[k] for k in ("dataset", "protocol", "extractor", "matcher", "run")},
                            "indicator": INDICATOR_NAMES[name],
                            **{k: ("" if ind.get(k) is None else ind[k]) for k in INDICATOR_CSV_FIELDS[6:]}})
    with open(speed_path, "w", newline="") as f:
        w = csv.DictWriter(f, SPEED_CSV_FIELDS, lineterminator="\n")
        w.writeheader()
        for s in summaries:
            sp = s["speed"]
            row = {k: s[k] for k in ("dataset", "protocol", "extractor", "matcher", "run")}
            row.update(extraction_ms_median=sp["extraction_ms"]["median"], extraction_ms_p95=sp["extraction_ms"]["p95"],
                       extraction_n=sp["extraction_ms"]["n"], comparison_us_median=sp["comparison_us"]["median"],
                       comparison_us_p95=sp["comparison_us"]["p95"], comparison_n=sp["comparison_us"]["n"],
                       comparisons_per_s_per_core=sp["comparisons_per_second_per_core"],
                       template_bytes_mean=sp["template_bytes"]["mean"], minutiae_mean=sp["minutiae"]["mean"])
            w.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return [ind_path, speed_path]


# ------------------------------------------------------------------------ Markdown
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#])")


def _md(text: Any) -> str:
    """Text from runs (file, sample and plugin names, parameters) made inert in Markdown:
    HTML escaped as in the HTML report, Markdown marks and table bars backslashed, one line."""
    text = html.escape(str(text).replace("\r", " ").replace("\n", " "), quote=False)
    return _MD_SPECIAL.sub(r"\\\1", text)


def markdown(groups: Sequence[dict[str, Any]], labels: dict[str, str], notes: Sequence[str],
             overview: dict[str, Any], figures: dict[str, str]) -> str:
    lines = ["# FingerBench report", ""]
    lines += [f"> {_md(n)}" for n in notes] + ([""] if notes else [])
    if overview["datasets"] and (len(overview["datasets"]) > 1 or len(overview["labels"]) > 1):
        lines += ["## EER (%) by algorithm and dataset, 95 % subject-bootstrap interval", "",
                  "| algorithm | " + " | ".join(_md(d) for d in overview["datasets"]) + " |",
                  "|---|" + "---|" * len(overview["datasets"])]
        for lab in overview["labels"]:
            cells = []
            for d in overview["datasets"]:
                s = overview["cells"].get((lab, d))
                cells.append("" if s is None else f"{value_text(s['indicators']['eer'])} "
                                                  f"{ci_text(s['indicators']['eer'])}".strip())
            lines.append(f"| {_md(lab)} | " + " | ".join(cells) + " |")
        lines.append("")
    for g in groups:
        ss = g["summaries"]
        lines += [f"## {_md(g['title'])}", "", _md(g["subtitle"]), "",
                  "Rates in %, each with its 95 % subject-bootstrap interval; N = genuine / impostor "
                  "comparisons (images for REJ_ENROLL).", ""]
        header = "| algorithm | " + " | ".join(
            f"{INDICATOR_NAMES[k]}" + (f" (N {shared_n(k, ss)})" if shared_n(k, ss) else "")
            for k in RATE_INDICATORS) + " |"
        lines += [header, "|---|" + "---|" * len(RATE_INDICATORS)]
        for s in ss:
            cells = []
            for k in RATE_INDICATORS:
                ind = s["indicators"][k]
                cell = f"{value_text(ind)} {ci_text(ind)}".strip()
                if k == "eer" and ind["value"] is not None:
                    lo, hi = s["accuracy_details"]["eer_interval"]
                    cell += f" (FVC interval {pct(lo)}-{pct(hi)})"
                if not shared_n(k, ss):
                    cell += f" (N {n_text(k, ind)})"
                cells.append(_md(cell))
            lines.append(f"| {_md(labels[s['run']])} | " + " | ".join(cells) + " |")
        for note in reason_notes(ss, labels):
            lines.append(f"\n- {_md(note)}")
        lines += ["", "| algorithm | extraction ms median | extraction ms p95 | comparison µs median "
                      "| comparisons/s/core | template bytes (mean) | minutiae (mean) |",
                  "|---|---|---|---|---|---|---|"]
        for s in ss:
            sp = s["speed"]
            lines.append(
                f"| {_md(labels[s['run']])} | {num(sp['extraction_ms']['median'])} | {num(sp['extraction_ms']['p95'])} "
                f"| {num(sp['comparison_us']['median'], ',.0f')} | {num(sp['comparisons_per_second_per_core'], ',.0f')} "
                f"| {num(sp['template_bytes']['mean'], ',.0f')} | {num(sp['minutiae']['mean'], '.0f')} |")
        lines.append("")
        for name, caption in (("det", "DET"), ("roc", "ROC"), ("scores", "Score distributions"),
                              ("speed", "Accuracy against speed")):
            key = f"{g['id']}-{name}"
            if key in figures:
                lines += [f"![{caption}]({figures[key]})", ""]
        for s in ss:
            worst = g["worst"].get(s["run"])
            if not worst:
                continue
            imp, gen, note = worst
            lines.append(f"Worst errors of {_md(labels[s['run']])}: highest impostor scores "
                         + ", ".join(f"{_md(c.probe)} vs {_md(c.reference)} ({c.score:g})" for c in imp)
                         + "; lowest genuine scores "
                         + ", ".join(f"{_md(c.probe)} vs {_md(c.reference)} ({c.score:g})" for c in gen) + ".")
            if note:
                lines.append(f"({_md(note)})")
            lines.append("")
    lines += ["## Provenance", ""]
    for g in groups:
        for s in g["summaries"]:
            p = s["provenance"]
            src = p.get("source") or {}
            mach = p.get("machine") or {}
            commit = src.get("commit") or "unknown"
            if src.get("dirty"):
                commit += " (uncommitted changes)"
            lines.append(
                f"- {_md(labels[s['run']])} on {_md(s['dataset'])} / {_md(s['protocol'])}: "
                f"{_md(s['run'])}; dataset sha256 {str(p['dataset'].get('sha256'))[:16]}, "
                f"pairs sha256 {str(p['protocol'].get('pairs_sha256'))[:16]}; "
                f"{_md(p['extractor']['name'])} {_md(p['extractor']['version'])} {_md(p['extractor']['params'])}, "
                f"{_md(p['matcher']['name'])} {_md(p['matcher']['version'])} {_md(p['matcher']['params'])}; "
                f"{_md(mach.get('cpu', 'unknown CPU'))}, {mach.get('cores', '?')} cores, Python {mach.get('python', '?')}; "
                f"commit {_md(commit)}")
    return "\n".join(lines) + "\n"
