"""Report tables: number formatting, the CSV files, the paper tables (CSV, Markdown and
LaTeX with booktabs, each with its caption) and the Markdown report.

Rates are written in percent in Markdown, HTML and LaTeX, and as fractions in ``indicators.csv``,
``thresholds.csv`` and JSON; the CSV column names say which (``value_fraction``).
"""

from __future__ import annotations

import csv
import html
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from bench.report.summary import INDICATOR_NAMES, THRESHOLD_NAMES

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
#: Columns of indicators.csv; rates are fractions (0.0361, not 3.61 %), as the names say.
INDICATOR_CSV_FIELDS = ["dataset", "protocol", "extractor", "matcher", "run", "indicator", "value_fraction",
                        "ci_low_fraction", "ci_high_fraction", "n_genuine", "n_impostor", "n", "count", "reason"]
_INDICATOR_KEYS = {"value_fraction": "value", "ci_low_fraction": "ci_low", "ci_high_fraction": "ci_high"}
#: Columns of thresholds.csv: raw scores in the matcher's own scale, the rate as a fraction.
THRESHOLD_CSV_FIELDS = ["dataset", "protocol", "extractor", "matcher", "run", "operating_point", "accept",
                        "threshold", "ci_low", "ci_high", "n_replicates_used", "rate_fraction", "reason"]
SPEED_CSV_FIELDS = ["dataset", "protocol", "extractor", "matcher", "run", "extraction_ms_median",
                    "extraction_ms_p95", "extraction_n", "comparison_us_median", "comparison_us_p95",
                    "comparison_n", "comparisons_per_s_per_core", "template_bytes_mean", "minutiae_mean"]


def write_csv(summaries: Sequence[dict[str, Any]], out: Path) -> list[Path]:
    """``indicators.csv`` (one row per run and indicator), ``thresholds.csv`` (one row per run
    and operating point) and ``speed.csv`` (one per run)."""
    ind_path, speed_path, thr_path = out / "indicators.csv", out / "speed.csv", out / "thresholds.csv"
    with open(ind_path, "w", newline="") as f:
        w = csv.DictWriter(f, INDICATOR_CSV_FIELDS, lineterminator="\n")
        w.writeheader()
        for s in summaries:
            for name, ind in s["indicators"].items():
                w.writerow({**{k: s[k] for k in ("dataset", "protocol", "extractor", "matcher", "run")},
                            "indicator": INDICATOR_NAMES[name],
                            **{k: ("" if ind.get(_INDICATOR_KEYS.get(k, k)) is None else ind[_INDICATOR_KEYS.get(k, k)])
                               for k in INDICATOR_CSV_FIELDS[6:]}})
    with open(thr_path, "w", newline="") as f:
        w = csv.DictWriter(f, THRESHOLD_CSV_FIELDS, lineterminator="\n")
        w.writeheader()
        for s in summaries:
            for name, t in s["accuracy_details"]["thresholds"].items():
                row = {**{k: s[k] for k in ("dataset", "protocol", "extractor", "matcher", "run")},
                       "operating_point": THRESHOLD_NAMES[name], "accept": t["accept"], "threshold": t["threshold"],
                       "ci_low": t["ci_low"], "ci_high": t["ci_high"], "n_replicates_used": t["n_used"],
                       "rate_fraction": t["rate"], "reason": t["reason"]}
                w.writerow({k: ("" if v is None else v) for k, v in row.items()})
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
    return [ind_path, speed_path, thr_path]


# ----------------------------------------------------------------- paper tables
_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "µ": r"$\mu$", "≥": r"$\geq$", "≤": r"$\leq$", "×": r"$\times$",
                  ">=": r"$\geq$", "<=": r"$\leq$", "<": r"$<$", ">": r"$>$"}
_LATEX_RE = re.compile("|".join(re.escape(k) for k in sorted(_LATEX_SPECIAL, key=len, reverse=True)))


def latex_escape(text: Any) -> str:
    """Text made literal in LaTeX (the ten special characters; µ, ≥, ≤, ×, <, >, <=, >= in math
    mode, since < and > of the default font encoding print other glyphs)."""
    return _LATEX_RE.sub(lambda m: _LATEX_SPECIAL[m.group(0)], str(text).replace("\n", " "))


@dataclass
class PaperTable:
    """One table of a report, written as CSV, Markdown and LaTeX (booktabs) with its caption.

    ``columns`` and ``rows`` hold the cells as shown (rates in %); the first column is the
    row label, left-aligned, the others right-aligned.
    """

    name: str
    caption: str
    columns: list[str]
    rows: list[list[str]]

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(self.columns)
        w.writerows(self.rows)
        return buf.getvalue()

    def to_markdown(self) -> str:
        lines = [f"Table: {_md(self.caption)}", "", "| " + " | ".join(_md(c) for c in self.columns) + " |",
                 "|---|" + "---:|" * (len(self.columns) - 1)]
        lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in self.rows]
        return "\n".join(lines) + "\n"

    def to_latex(self) -> str:
        """A ``table`` float with ``\\toprule``/``\\midrule``/``\\bottomrule`` (needs
        ``\\usepackage{booktabs}``), caption above, label ``tab:NAME``."""
        spec = "l" + "r" * (len(self.columns) - 1)
        lines = [r"\begin{table}[htbp]", r"\centering", r"\small",
                 rf"\caption{{{latex_escape(self.caption)}}}", rf"\label{{tab:{self.name}}}",
                 rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
                 " & ".join(latex_escape(c) for c in self.columns) + r" \\", r"\midrule"]
        lines += [" & ".join(latex_escape(c) for c in row) + r" \\" for row in self.rows]
        lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
        return "\n".join(lines) + "\n"

    def write(self, files: Any) -> dict[str, str]:
        """Write ``tables/NAME.csv``, ``.md`` and ``.tex`` through a :class:`ReportOutput`;
        return their relative paths by format."""
        out = {}
        for ext, text in (("csv", self.to_csv()), ("md", self.to_markdown()), ("tex", self.to_latex())):
            rel = f"tables/{self.name}.{ext}"
            files.path(rel).write_text(text, encoding="utf-8")
            out[ext] = rel
        return out


def latex_figure(name: str, caption: str) -> str:
    """A LaTeX ``figure`` that includes ``NAME.pdf`` (next to it), with its caption; label ``fig:NAME``."""
    return "\n".join([r"\begin{figure}[htbp]", r"\centering",
                      rf"\includegraphics[width=\linewidth]{{{name}.pdf}}",
                      rf"\caption{{{latex_escape(caption)}}}", rf"\label{{fig:{name}}}", r"\end{figure}"]) + "\n"


def params_text(params: Any) -> str:
    """Parameters as ``name=value, ...`` (sorted), ``defaults`` when there are none."""
    if not params:
        return "defaults"
    if not isinstance(params, dict):
        return str(params)
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items()))


def interval_method(summaries: Sequence[dict[str, Any]]) -> str:
    """How the intervals of these runs were made, for captions."""
    boot = summaries[0]["accuracy_details"].get("bootstrap") or {}
    n = boot.get("n_replicates") or 0
    if not n:
        return "no intervals (bootstrap not run)"
    return (f"{100 * boot.get('level', 0.95):g} % intervals: subject-level percentile bootstrap "
            f"(Bolle, Ratha, Pankanti 2004), {n:,} replicates")


def caption_context(group: dict[str, Any]) -> str:
    """Dataset, resolution, protocol, N and interval method of a group, for every caption."""
    s = group["summaries"][0]
    p = s["provenance"]
    n_gen, n_imp = p["protocol"].get("n_genuine"), p["protocol"].get("n_impostor")
    dpi = p["dataset"].get("dpi")
    return (f"Dataset {s['dataset']} ({'?' if dpi is None else format(dpi, 'g')} dpi, {p['dataset'].get('n_samples') or '?'} "
            f"images), protocol {s['protocol']}, N = {n_gen:,} genuine / {n_imp:,} impostor comparisons; "
            f"{interval_method(group['summaries'])}.")


def _value_ci(ind: dict[str, Any]) -> str:
    return f"{value_text(ind)} {ci_text(ind)}".strip()


def accuracy_table(group: dict[str, Any], labels: dict[str, str]) -> PaperTable:
    ss = group["summaries"]
    cols = ["algorithm"] + [f"{INDICATOR_NAMES[k]} (%)" for k in RATE_INDICATORS]
    rows = [[labels[s["run"]]] + [_value_ci(s["indicators"][k]) for k in RATE_INDICATORS] for s in ss]
    return PaperTable(f"{group['id']}-accuracy", "FVC indicators in %, each with its interval "
                      "(REJ_ENROLL per image, REJ_MATCH per comparison). " + caption_context(group), cols, rows)


def threshold_text(t: dict[str, Any]) -> str:
    if t["threshold"] is None:
        reason = t.get("reason") or ""
        return "unresolvable" if reason.startswith("unresolvable") else "n/a"
    ci = f" [{t['ci_low']:.4g}, {t['ci_high']:.4g}]" if t["ci_low"] is not None else ""
    return f"{t['threshold']:.4g}{ci}"


def thresholds_table(group: dict[str, Any], labels: dict[str, str]) -> PaperTable:
    ss = group["summaries"]
    cols = ["algorithm", "accept if score"] + [f"t at {THRESHOLD_NAMES[k]}" for k in THRESHOLD_NAMES]
    rows = [[labels[s["run"]], next(iter(s["accuracy_details"]["thresholds"].values()))["accept"] + " t"]
            + [threshold_text(s["accuracy_details"]["thresholds"][k]) for k in THRESHOLD_NAMES] for s in ss]
    return PaperTable(f"{group['id']}-thresholds",
                      "Score threshold t (raw matcher score) at the EER and at the lowest FNMR with FMR <= 1 %, "
                      "0.1 %, 0.01 % (FMR100, FMR1000, FMR10000), with its interval (the threshold of each "
                      "bootstrap replicate's error curve); unresolvable where the impostor comparisons cannot "
                      "show that FMR. " + caption_context(group), cols, rows)


def speed_paper_table(group: dict[str, Any], labels: dict[str, str]) -> PaperTable:
    cols = ["algorithm", "extraction ms (median)", "extraction ms (p95)", "comparison µs (median)",
            "comparisons/s/core", "template bytes (mean)", "minutiae (mean)"]
    rows = []
    for s in group["summaries"]:
        sp = s["speed"]
        rows.append([labels[s["run"]], num(sp["extraction_ms"]["median"]), num(sp["extraction_ms"]["p95"]),
                     num(sp["comparison_us"]["median"], ",.0f"), num(sp["comparisons_per_second_per_core"], ",.0f"),
                     num(sp["template_bytes"]["mean"], ",.0f"), num(sp["minutiae"]["mean"], ".0f")])
    return PaperTable(f"{group['id']}-speed", "Speed, one core per worker process. " + caption_context(group),
                      cols, rows)


def overview_paper_table(overview: dict[str, Any], groups: Sequence[dict[str, Any]]) -> PaperTable:
    cols = ["algorithm"] + list(overview["datasets"])
    rows = []
    for lab in overview["labels"]:
        cells = []
        for d in overview["datasets"]:
            s = overview["cells"].get((lab, d))
            cells.append("" if s is None else _value_ci(s["indicators"]["eer"]))
        rows.append([lab] + cells)
    protocols = sorted({g["summaries"][0]["protocol"] for g in groups})
    dpis = ", ".join(f"{g['column']} {format(g['summaries'][0]['provenance']['dataset'].get('dpi') or 0, 'g')} dpi"
                     for g in groups)
    ns = ", ".join(f"{g['column']} {g['summaries'][0]['provenance']['protocol'].get('n_genuine'):,} / "
                   f"{g['summaries'][0]['provenance']['protocol'].get('n_impostor'):,}" for g in groups)
    return PaperTable("overview-eer", f"EER (%) by algorithm and dataset, protocol {', '.join(protocols)}; "
                      f"resolution: {dpis}; N genuine / impostor: {ns}; "
                      f"{interval_method(groups[0]['summaries'])}.", cols, rows)


# ------------------------------------------------------------------------ Markdown
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#])")


def _md(text: Any) -> str:
    """Text from runs (file, sample and plugin names, parameters) made inert in Markdown:
    HTML escaped as in the HTML report, Markdown marks and table bars backslashed, one line."""
    text = html.escape(str(text).replace("\r", " ").replace("\n", " "), quote=False)
    return _MD_SPECIAL.sub(r"\\\1", text)


def markdown(groups: Sequence[dict[str, Any]], labels: dict[str, str], notes: Sequence[str],
             overview: dict[str, Any], figures: dict[str, str], captions: dict[str, str] | None = None) -> str:
    captions = captions or {}
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
        thr = thresholds_table(g, labels)
        lines += [f"{_md(thr.caption)}", "", "| " + " | ".join(_md(c) for c in thr.columns) + " |",
                  "|---|" + "---|" * (len(thr.columns) - 1)]
        lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in thr.rows]
        lines.append("")
        quality = g.get("quality_table")
        if quality is not None:
            lines += [f"{_md(quality.caption)}", "", "| " + " | ".join(_md(c) for c in quality.columns) + " |",
                      "|---|" + "---|" * (len(quality.columns) - 1)]
            lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in quality.rows]
            lines.append("")
        for name, caption in (("det", "DET"), ("roc", "ROC"), ("scores", "Score distributions"),
                              ("speed", "Accuracy against speed"), ("quality", "Image quality"),
                              ("erc", "Error against reject"), ("bands", "DET per quality band")):
            key = f"{g['id']}-{name}"
            if key in figures:
                lines += [f"![{caption}]({figures[key]})", ""]
                if key in captions:
                    lines += [f"*{_md(captions[key])}* (vector files: {figures[key][:-4]}.svg, .pdf)", ""]
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
                f"{_md(p['extractor']['name'])} {_md(p['extractor']['version'])} ({_md(params_text(p['extractor']['params']))}), "
                f"{_md(p['matcher']['name'])} {_md(p['matcher']['version'])} ({_md(params_text(p['matcher']['params']))}); "
                f"{_md(mach.get('cpu', 'unknown CPU'))}, {mach.get('cores', '?')} cores, Python {mach.get('python', '?')}; "
                f"commit {_md(commit)}")
    return "\n".join(lines) + "\n"
