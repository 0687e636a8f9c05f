"""The self-contained HTML report: one file, figures embedded as base64 images, inline
CSS, no scripts, no external fonts or links to fetch, so it works offline and can be
attached to a CI job. Every name and path from the runs is HTML-escaped.
"""

from __future__ import annotations

import base64
import time
from html import escape
from typing import Any, Sequence

import numpy as np

from bench.report.summary import INDICATOR_NAMES
from bench.report.summary import THRESHOLD_NAMES
from bench.report.tables import (
    RATE_INDICATORS, ci_text, n_text, num, pct, reason_notes, shared_n, threshold_text, value_text,
)

CSS = """
:root { --fg:#1d2330; --muted:#5b6475; --line:#dfe3ea; --bg:#ffffff; --soft:#f5f7fa; --accent:#0b5cad; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--fg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 20px 28px 60px; }
header { border-bottom: 3px solid var(--accent); padding-bottom: 10px; margin-bottom: 18px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 34px 0 4px; padding-top: 8px; border-top: 1px solid var(--line); }
h3 { font-size: 15px; margin: 20px 0 6px; }
.sub { color: var(--muted); font-size: 13px; }
.note { background: #fff7e0; border-left: 4px solid #e0a800; padding: 6px 12px; margin: 8px 0; font-size: 13px; }
.warn { background: #fdecea; border-left: 4px solid #c62828; padding: 6px 12px; margin: 8px 0; font-size: 13px; }
table { border-collapse: collapse; margin: 8px 0 6px; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 8px; text-align: right; vertical-align: top; }
.scroll { overflow-x: auto; max-width: 100%; }
table.matrix th, table.matrix td { padding: 4px 6px; }
table.matrix th { white-space: normal; }
table.matrix td.alg { white-space: nowrap; }
th { background: var(--soft); font-weight: 600; }
th:first-child, td:first-child { text-align: left; }
td.alg { font-weight: 600; min-width: 150px; max-width: 260px; }
.ci, .n { display: block; color: var(--muted); font-size: 11px; font-weight: 400; white-space: nowrap; }
.best { font-weight: 700; }
.unres { color: #8a6d00; font-style: italic; }
.swatch { display:inline-block; width:10px; height:10px; border-radius:2px; margin-right:6px; }
.figs { display: flex; flex-wrap: wrap; gap: 12px; margin: 10px 0; }
.figs img { border: 1px solid var(--line); border-radius: 4px; max-width: 100%; }
.wide img { width: 100%; max-width: 1010px; }
ul.reasons { margin: 4px 0 10px; padding-left: 20px; color: var(--muted); font-size: 12px; }
details { margin: 8px 0; }
summary { cursor: pointer; font-weight: 600; }
.pairs { display: flex; flex-wrap: wrap; gap: 14px; margin: 8px 0 12px; }
figure.pair { margin: 0; font-size: 12px; }
figure.pair img { display: block; border: 1px solid var(--line); }
figure.pair figcaption { color: var(--muted); max-width: 640px; }
code { font-size: 12px; background: var(--soft); padding: 1px 4px; border-radius: 3px; word-break: break-all; }
.prov td, .prov th { text-align: left; font-size: 12px; }
.prov code { word-break: normal; }
.figs figure { margin: 0; max-width: 100%; }
.figs figcaption, figure.pair figcaption { color: var(--muted); font-size: 12px; max-width: 560px; }
.wide figure { width: 100%; max-width: 1010px; }
figure.pair { max-width: 100%; }
figure.pair img { max-width: 100%; height: auto; }
td.alg, .prov td { overflow-wrap: anywhere; }
/* Narrow windows: tables shrink (intervals and headers wrap) instead of scrolling sideways. */
@media (max-width: 1100px) {
  main { padding: 14px 12px 40px; }
  table { font-size: 12px; }
  th, td { padding: 4px 4px; }
  th { white-space: normal; }
  td.alg { min-width: 0; max-width: 140px; }
  .ci, .n { white-space: normal; font-size: 10.5px; }
}
footer { margin-top: 40px; color: var(--muted); font-size: 12px; border-top: 1px solid var(--line); padding-top: 8px; }
"""


def _img(data: bytes, alt: str, mime: str = "image/png", cls: str = "") -> str:
    b64 = base64.b64encode(data).decode("ascii")
    c = f' class="{cls}"' if cls else ""
    return f'<img{c} alt="{escape(alt)}" src="data:{mime};base64,{b64}">'


def _swatch(colour: str) -> str:
    return f'<span class="swatch" style="background:{escape(colour)}"></span>'


def _value_cell(ind: dict[str, Any], best: bool, extra: str = "") -> str:
    if ind["value"] is None:
        reason = escape(ind.get("reason") or "", quote=True)
        return f'<td><span class="unres" title="{reason}">{escape(value_text(ind))}</span>{extra}</td>'
    cls = ' class="best"' if best else ""
    ci = ci_text(ind)
    return (f"<td><span{cls}>{escape(value_text(ind))}</span>"
            + (f'<span class="ci">{escape(ci)}</span>' if ci else "") + f"{extra}</td>")


def _best(summaries: Sequence[dict[str, Any]], name: str) -> float | None:
    vals = [s["indicators"][name]["value"] for s in summaries if s["indicators"][name]["value"] is not None]
    return min(vals) if len(vals) > 1 and len(set(vals)) > 1 else None


def indicator_table(summaries: Sequence[dict[str, Any]], labels: dict[str, str], colour_map: dict) -> str:
    head = ["<th>algorithm</th>"]
    for k in RATE_INDICATORS:
        n = shared_n(k, summaries)
        head.append(f"<th>{escape(INDICATOR_NAMES[k])}"
                    + (f'<span class="n">N {escape(n)}</span>' if n else "") + "</th>")
    rows = []
    for s in summaries:
        lab = labels[s["run"]]
        cells = [f'<td class="alg">{_swatch(colour_map[lab][0])}{escape(lab)}</td>']
        for k in RATE_INDICATORS:
            ind = s["indicators"][k]
            best = _best(summaries, k)
            extra = ""
            if k == "eer" and ind["value"] is not None:
                lo, hi = s["accuracy_details"]["eer_interval"]
                extra = f'<span class="n">FVC interval {pct(lo)}-{pct(hi)}</span>'
            if not shared_n(k, summaries):
                extra += f'<span class="n">N {escape(n_text(k, ind))}</span>'
            cells.append(_value_cell(ind, best is not None and ind["value"] == best, extra))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return "<div class='scroll'><table><tr>" + "".join(head) + "</tr>" + "".join(rows) + "</table></div>"


def thresholds_table(summaries: Sequence[dict[str, Any]], labels: dict[str, str], colour_map: dict) -> str:
    """Score threshold at the EER and at FMR100/FMR1000/FMR10000, interval below each."""
    head = ("<tr><th>algorithm</th><th>accept if</th>"
            + "".join(f"<th>t at {escape(THRESHOLD_NAMES[k])}</th>" for k in THRESHOLD_NAMES) + "</tr>")
    rows = []
    for s in summaries:
        lab = labels[s["run"]]
        thr = s["accuracy_details"]["thresholds"]
        cells = [f'<td class="alg">{_swatch(colour_map[lab][0])}{escape(lab)}</td>',
                 f"<td>score {escape(next(iter(thr.values()))['accept'])} t</td>"]
        for k in THRESHOLD_NAMES:
            t = thr[k]
            if t["threshold"] is None:
                cells.append(f'<td><span class="unres" title="{escape(t.get("reason") or "", quote=True)}">'
                             f"{escape(threshold_text(t))}</span></td>")
                continue
            ci = f'<span class="ci">[{t["ci_low"]:.4g}, {t["ci_high"]:.4g}]</span>' if t["ci_low"] is not None else ""
            cells.append(f"<td>{t['threshold']:.4g}{ci}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return "<div class='scroll'><table>" + head + "".join(rows) + "</table></div>"


def speed_table(summaries: Sequence[dict[str, Any]], labels: dict[str, str], colour_map: dict) -> str:
    head = ("<tr><th>algorithm</th><th>extraction ms<span class='n'>median</span></th>"
            "<th>extraction ms<span class='n'>p95</span></th><th>comparison µs<span class='n'>median</span></th>"
            "<th>comparison µs<span class='n'>p95</span></th><th>comparisons/s<span class='n'>per core</span></th>"
            "<th>template bytes<span class='n'>mean</span></th><th>minutiae<span class='n'>mean</span></th></tr>")
    rows = []
    for s in summaries:
        sp = s["speed"]
        lab = labels[s["run"]]
        rows.append(
            f'<tr><td class="alg">{_swatch(colour_map[lab][0])}{escape(lab)}</td>'
            f"<td>{num(sp['extraction_ms']['median'])}</td><td>{num(sp['extraction_ms']['p95'])}</td>"
            f"<td>{num(sp['comparison_us']['median'], ',.0f')}</td><td>{num(sp['comparison_us']['p95'], ',.0f')}</td>"
            f"<td>{num(sp['comparisons_per_second_per_core'], ',.0f')}</td><td>{num(sp['template_bytes']['mean'], ',.0f')}</td>"
            f"<td>{num(sp['minutiae']['mean'], '.0f')}</td></tr>")
    return "<div class='scroll'><table>" + head + "".join(rows) + "</table></div>"


def _column_name(name: str) -> str:
    """A dataset name that may wrap after its first hyphen only (fvc2002- / db1-b)."""
    head, sep, tail = escape(name).partition("-")
    return head + (sep + "<wbr>" + tail.replace("-", "&#8209;") if sep else "")


def overview_table(overview: dict[str, Any], colour_map: dict) -> str:
    ds = overview["datasets"]
    head = ("<tr><th>algorithm</th>" + "".join(f"<th>{_column_name(d)}</th>" for d in ds)
            + ("<th>mean<span class='n'>of the datasets</span></th>" if overview["mean"] else "") + "</tr>")
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
        cells = [f'<td class="alg">{_swatch(colour_map[lab][0])}{escape(lab)}</td>']
        for d in ds:
            s = overview["cells"].get((lab, d))
            if s is None:
                cells.append("<td></td>")
                continue
            ind = s["indicators"]["eer"]
            cells.append(_value_cell(ind, best[d] is not None and ind["value"] == best[d]))
        if overview["mean"]:
            if lab in means:
                cls = " class='best'" if means[lab] == best_mean else ""
                cells.append(f"<td><span{cls}>{pct(means[lab])}</span></td>")
            else:
                cells.append("<td><span class='unres' title='not run on every dataset, or no EER'>"
                             "incomplete</span></td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return "<div class='scroll'><table class='matrix'>" + head + "".join(rows) + "</table></div>"


def paper_table_html(table: Any) -> str:
    """A :class:`bench.report.tables.PaperTable` as an HTML table (its caption is shown apart)."""
    head = "".join(f"<th>{escape(c)}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in table.rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _worst_html(worst: tuple, label: str) -> str:
    imp, gen, note = worst
    parts = [f"<h3>Worst errors: {escape(label)}</h3>"]
    if note:
        parts.append(f'<div class="note">{escape(note)}</div>')
    for title, cases in (("Highest-scoring impostor comparisons (false matches first)", imp),
                         ("Lowest-scoring genuine comparisons (false non-matches first)", gen)):
        if not cases:
            parts.append(f"<p class='sub'>{escape(title)}: none scored.</p>")
            continue
        parts.append(f"<div class='sub'>{escape(title)}; minutiae: red ending, blue bifurcation, "
                     f"green other</div><div class='pairs'>")
        for c in cases:
            img = _img(c.image, f"{c.probe} and {c.reference}", "image/jpeg") if c.image else ""
            notes = "".join(f"<br>{escape(n)}" for n in c.notes)
            parts.append(f"<figure class='pair'>{img}<figcaption>#{c.rank}: <b>{escape(c.probe)}</b> vs "
                         f"<b>{escape(c.reference)}</b>, score {escape(f'{c.score:g}')}{notes}</figcaption></figure>")
        parts.append("</div>")
    return "\n".join(parts)


def _params_html(params: Any) -> str:
    """Parameters as a small key/value list, not a raw dict."""
    if not params:
        return "<span class='sub'>defaults</span>"
    if not isinstance(params, dict):
        return f"<code>{escape(str(params))}</code>"
    return "<br>".join(f"{escape(str(k))} = <code>{escape(str(v))}</code>" for k, v in sorted(params.items()))


def _provenance_rows(groups: Sequence[dict[str, Any]], labels: dict[str, str]) -> str:
    rows = ["<tr><th>run</th><th>dataset</th><th>protocol</th><th>extractor</th><th>matcher</th>"
            "<th>machine</th><th>source</th></tr>"]
    for g in groups:
        for s in g["summaries"]:
            p = s["provenance"]
            ds, pr = p["dataset"], p["protocol"]
            mach, src = p.get("machine") or {}, p.get("source") or {}
            commit = src.get("commit") or "unknown"
            dirty = " (uncommitted changes)" if src.get("dirty") else ""
            pkgs = ", ".join(f"{k} {v}" for k, v in (p.get("packages") or {}).items())
            rows.append(
                "<tr>"
                f"<td><b>{escape(labels[s['run']])}</b><br><code>{escape(s['run'])}</code><br>"
                f"{escape(str(p.get('created') or ''))}</td>"
                f"<td>{escape(str(ds.get('name')))}<br>sha256 <code>{escape(str(ds.get('sha256'))[:16])}</code>"
                f"<br>{escape(str(ds.get('n_samples')))} images, {escape(str(ds.get('dpi')))} dpi"
                f"<br>{escape(str(ds.get('n_problems') or 0))} dataset problems</td>"
                f"<td>{escape(str(pr.get('name')))}<br>{_params_html(pr.get('params'))}<br>"
                f"{escape(str(pr.get('n_genuine')))} genuine / {escape(str(pr.get('n_impostor')))} impostor<br>"
                f"pairs sha256 <code>{escape(str(pr.get('pairs_sha256'))[:16])}</code></td>"
                f"<td>{escape(str(p['extractor'].get('name')))} {escape(str(p['extractor'].get('version')))}<br>"
                f"{_params_html(p['extractor'].get('params'))}</td>"
                f"<td>{escape(str(p['matcher'].get('name')))} {escape(str(p['matcher'].get('version')))}<br>"
                f"{_params_html(p['matcher'].get('params'))}</td>"
                f"<td>{escape(str(mach.get('cpu', 'unknown')))}<br>{escape(str(mach.get('cores', '?')))} cores, "
                f"{escape(str(mach.get('platform', '')))}<br>Python {escape(str(mach.get('python', '?')))}</td>"
                f"<td>commit <code>{escape(commit[:12])}</code>{escape(dirty)}<br><span class='sub'>"
                f"{escape(pkgs)}</span></td></tr>")
    return "<div class='scroll'><table class='prov'>" + "".join(rows) + "</table></div>"


METHOD = """
<h2 id="method">How the numbers are made</h2>
<p>Indicators follow the FVC definitions (Maio et al., IEEE TPAMI 24(3), 2002; Cappelli et al.,
IEEE TPAMI 28(1), 2006): FMR(t) is the share of impostor scores &ge; t, FNMR(t) the share of genuine
scores &lt; t. EER is the middle of the FVC interval [EER<sub>low</sub>, EER<sub>high</sub>], shown under
it. FMR100, FMR1000, FMR10000: the lowest FNMR with FMR &le; 1 %, 0.1 %, 0.01 %. ZeroFMR: the lowest
FNMR with FMR = 0; ZeroFNMR: the lowest FMR with FNMR = 0. REJ_ENROLL: failed enrolments per image
(their comparisons use a ghost template that matches nothing). REJ_MATCH = (REJ_NGRA + REJ_NIRA) per
comparison: failed comparisons, counted as errors. EER*: the EER of the comparisons no failure
touched. An operating point finer than 1/N impostor comparisons is <i>unresolvable</i> and is never
shown as a number.</p>
<p>Intervals are 95 % percentile intervals of a subject-level bootstrap (the subsets bootstrap of
Bolle, Ratha and Pankanti, 2004): subjects (fingers) are drawn with replacement; every comparison whose
two subjects are drawn is kept, a genuine one weighted by its subject's number of draws, an impostor
one by the product of its two subjects' numbers of draws; copies of one subject are not compared with
each other. Comparisons that share a finger are correlated, which a bootstrap over single comparisons
would ignore.</p>
<p>Speed: extraction time per image and comparison time per pair as measured inside one worker process
(one core); comparisons/s per core is the number of comparisons over their total time (1 / the mean
comparison time), the median and p95 describe single comparisons. The accuracy-against-speed charts
circle the Pareto-optimal algorithms, those that no other algorithm beats on both axes.</p>
"""


def page(groups: Sequence[dict[str, Any]], labels: dict[str, str], colour_map: dict, notes: Sequence[str],
         warnings: Sequence[str], overview: dict[str, Any], figures: dict[str, bytes], n_runs: int,
         captions: dict[str, str] | None = None) -> str:
    captions = captions or {}

    def fig(key: str, alt: str, cls: str = "") -> str:
        c = f" class='{cls}'" if cls else ""
        cap = f"<figcaption>{escape(captions[key])}</figcaption>" if key in captions else ""
        return f"<figure{c}>{_img(figures[key], alt)}{cap}</figure>"

    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
             "<meta name='viewport' content='width=device-width, initial-scale=1'>",
             "<title>FingerBench report</title><style>", CSS, "</style></head><body><main>"]
    datasets = sorted({g["summaries"][0]["dataset"] for g in groups})
    parts.append(
        "<header><h1>FingerBench report</h1><div class='sub'>"
        f"{n_runs} run{'s' if n_runs != 1 else ''}, {len(overview['labels'])} algorithm"
        f"{'s' if len(overview['labels']) != 1 else ''}, {len(datasets)} dataset{'s' if len(datasets) != 1 else ''}"
        f" &middot; generated {escape(time.strftime('%Y-%m-%d %H:%M'))} &middot; "
        "<a href='#method'>how the numbers are made</a></div></header>")
    for n in notes:
        parts.append(f"<div class='note'>{escape(n)}</div>")
    for w in warnings:
        parts.append(f"<div class='warn'>{escape(w)}</div>")
    if len(overview["datasets"]) > 1 or len(overview["labels"]) > 1:
        parts.append("<h2>EER (%) by algorithm and dataset</h2><div class='sub'>95 % subject-bootstrap "
                     "interval below each value; best per dataset in bold.</div>")
        parts.append(overview_table(overview, colour_map))
    for g in groups:
        ss = g["summaries"]
        parts.append(f"<h2 id='{escape(g['id'])}'>{escape(g['title'])}</h2>"
                     f"<div class='sub'>{escape(g['subtitle'])}</div>")
        parts.append("<h3>Accuracy</h3><div class='sub'>Rates in %; 95 % subject-bootstrap interval below "
                     "each value; N = genuine / impostor comparisons.</div>")
        parts.append(indicator_table(ss, labels, colour_map))
        reasons = reason_notes(ss, labels)
        if reasons:
            parts.append("<ul class='reasons'>" + "".join(f"<li>{escape(r)}</li>" for r in reasons) + "</ul>")
        parts.append("<h3>Thresholds</h3><div class='sub'>The score threshold t where each operating point "
                     "is read, in the matcher's own scale, with its 95 % subject-bootstrap interval below it.</div>")
        parts.append(thresholds_table(ss, labels, colour_map))
        parts.append("<div class='figs'>")
        for name, alt in (("det", "DET curves"), ("roc", "ROC curves")):
            key = f"{g['id']}-{name}"
            if key in figures:
                parts.append(fig(key, f"{alt}, {g['title']}", "plot"))
        parts.append("</div>")
        parts.append("<h3>Speed</h3>")
        parts.append(speed_table(ss, labels, colour_map))
        key = f"{g['id']}-speed"
        if key in figures:
            parts.append("<div class='figs wide'>" + fig(key, f"accuracy against speed, {g['title']}") + "</div>")
        key = f"{g['id']}-scores"
        if key in figures:
            parts.append("<h3>Score distributions</h3><div class='figs wide'>"
                         + fig(key, f"score distributions, {g['title']}") + "</div>")
        quality = g.get("quality_table")
        if quality is not None:
            parts.append("<h3>Image quality</h3><div class='sub'>" + escape(quality.caption) + "</div>")
            parts.append(paper_table_html(quality))
            parts.append("<div class='figs'>")
            for name, alt in (("quality", "image quality distribution"), ("erc", "error-versus-reject curves")):
                key = f"{g['id']}-{name}"
                if key in figures:
                    parts.append(fig(key, f"{alt}, {g['title']}", "plot"))
            parts.append("</div>")
            key = f"{g['id']}-bands"
            if key in figures:
                parts.append("<div class='figs wide'>" + fig(key, f"DET per quality band, {g['title']}") + "</div>")
        worst = [(s, g["worst"].get(s["run"])) for s in ss if g["worst"].get(s["run"])]
        if worst:
            opened = " open" if n_runs <= 2 else ""
            parts.append(f"<details{opened}><summary>Worst errors ({len(worst)} algorithm"
                         f"{'s' if len(worst) != 1 else ''})</summary>")
            parts += [_worst_html(w, labels[s["run"]]) for s, w in worst]
            parts.append("</details>")
    parts.append(METHOD)
    parts.append("<h2>Provenance</h2>")
    parts.append(_provenance_rows(groups, labels))
    parts.append("<footer>Made by FingerBench from the stored records of the runs; "
                 "summary.json, indicators.csv, thresholds.csv and speed.csv hold the same numbers; figures/ and "
                 "tables/ hold every figure (PNG, SVG, PDF) and table (CSV, Markdown, LaTeX) with its caption, "
                 "references.bib what to cite.</footer>")
    parts.append("</main></body></html>")
    return "\n".join(parts)
