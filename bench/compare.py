"""Compare a baseline with a new result: metric deltas, identical scores, speed noise, gates.

Either side is a run directory, a folder holding run directories (found by their
``manifest.json``), or the ``summary.json`` of a report. Runs are paired by (dataset,
protocol, extractor, matcher); when each side holds exactly one run they are paired
whatever their names, so two algorithms can be compared directly.

Every value is read from each run's summary (``metrics.json``, through
:func:`bench.report.load_run`, or a report's ``summary.json``); nothing is recomputed here
but the noise estimate. A speed change is *within noise* when a two-sided Mann-Whitney U
test of the per-item timings gives p >= ``alpha``, or when the statistic (the median, or
for comparisons/s the rate: comparisons / total time) differs by less than ``min_effect``
(relative): timings of one run share the machine's state, so the test alone overstates
significance (asv's ``compare`` combines a test with a threshold in the same way). A
bootstrap interval of the relative change of that statistic is reported too.

Gates (``--fail-if``) are ``METRIC:CHANGE`` specifications, see :func:`parse_gate`.

Both sides may instead be pytest-benchmark JSON files (``--benchmark-json`` with
``--benchmark-save-data``, so that every round's time is kept): benchmarks are paired by
name and their time per round is judged by the same test and threshold (metric ``time``,
e.g. ``--fail-if time:+10%``), a gate that holds on a noisy machine where pytest-benchmark's
own ``--benchmark-compare-fail=median:10%`` fails on noise alone.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from bench.store import RunDirError

COMPARE_SCHEMA_VERSION = 1


class GateError(ValueError):
    """A ``--fail-if`` specification that cannot be understood."""


# ---------------------------------------------------------------------------- metrics
@dataclass(frozen=True)
class MetricDef:
    name: str
    title: str
    kind: str                    # "rate" (a fraction, shown in %) or "speed" / "size"
    unit: str
    better: str                  # "lower" or "higher"
    value: Callable[[dict[str, Any]], float | None]
    samples: str | None = None   # key in summary["timings"] of the per-item values
    statistic: str = "median"    # what the value is of the samples: "median", or "rate" (n / total)


def _ind(name: str) -> Callable[[dict[str, Any]], float | None]:
    return lambda s: s["indicators"][name]["value"]


def _speed(*keys: str) -> Callable[[dict[str, Any]], float | None]:
    def get(s: dict[str, Any]) -> float | None:
        cur: Any = s["speed"]
        for k in keys:
            cur = cur.get(k) if isinstance(cur, dict) else None
        return cur
    return get


METRICS: dict[str, MetricDef] = {m.name: m for m in (
    MetricDef("eer", "EER", "rate", "%", "lower", _ind("eer")),
    MetricDef("fmr100", "FMR100", "rate", "%", "lower", _ind("fmr100")),
    MetricDef("fmr1000", "FMR1000", "rate", "%", "lower", _ind("fmr1000")),
    MetricDef("fmr10000", "FMR10000", "rate", "%", "lower", _ind("fmr10000")),
    MetricDef("zero_fmr", "ZeroFMR", "rate", "%", "lower", _ind("zero_fmr")),
    MetricDef("zero_fnmr", "ZeroFNMR", "rate", "%", "lower", _ind("zero_fnmr")),
    MetricDef("rej_enroll", "REJ_ENROLL", "rate", "%", "lower", _ind("rej_enroll")),
    MetricDef("rej_match", "REJ_MATCH", "rate", "%", "lower", _ind("rej_match")),
    MetricDef("eer_star", "EER*", "rate", "%", "lower", _ind("eer_star")),
    MetricDef("extraction_ms", "extraction ms (median)", "speed", "ms", "lower",
              _speed("extraction_ms", "median"), samples="extraction_ms"),
    MetricDef("extraction_ms_p95", "extraction ms (p95)", "speed", "ms", "lower",
              _speed("extraction_ms", "p95")),
    MetricDef("comparison_us", "comparison µs (median)", "speed", "µs", "lower",
              _speed("comparison_us", "median"), samples="comparison_us"),
    MetricDef("comparisons_per_s", "comparisons/s/core", "speed", "/s", "higher",
              _speed("comparisons_per_second_per_core"), samples="comparison_us", statistic="rate"),
    MetricDef("template_bytes", "template bytes (mean)", "size", "B", "lower",
              _speed("template_bytes", "mean")),
)}

#: The metric of pytest-benchmark files: the median time of one round (seconds), judged on
#: the per-round times like the speed metrics of runs.
BENCHMARK_METRICS: dict[str, MetricDef] = {
    "time": MetricDef("time", "time per round (median)", "speed", "s", "lower", _speed("time_s", "median"),
                      samples="time_s"),
}


def metric_def(name: str) -> MetricDef:
    """The definition of a metric of runs or of pytest-benchmark files."""
    return METRICS[name] if name in METRICS else BENCHMARK_METRICS[name]


# ------------------------------------------------------------------------------ gates
@dataclass(frozen=True)
class Gate:
    """Fail when ``metric`` changes by more than ``amount`` in ``direction``.

    ``unit`` is ``"pp"`` (percentage points, rates only) or ``"%"`` (relative to the
    base value); ``direction`` is +1 (an increase beyond the amount fails), -1 (a
    decrease) or 0 (either). ``metric == "scores"`` fails when the scores differ.
    """

    spec: str
    metric: str
    direction: int = 0
    amount: float = 0.0
    unit: str = "%"

    def describe(self) -> str:
        if self.metric == "scores":
            return "scores must be identical"
        sign = {1: "rises", -1: "falls", 0: "changes"}[self.direction]
        return f"fail if {self.metric} {sign} by more than {self.amount:g} {self.unit}"


_GATE_RE = re.compile(r"^(?P<sign>[+-]?)(?P<num>(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?)(?P<unit>pp|%)$")
_EXAMPLES = "e.g. eer:+0.5pp, comparisons_per_s:-10%, extraction_ms:+20%, scores:changed"


def parse_gate(spec: str) -> Gate:
    """Parse ``METRIC:CHANGE``.

    CHANGE is an optional sign, a number and a unit: ``pp`` (percentage points, for
    rate metrics) or ``%`` (relative to the base value). ``+`` fails on an increase
    beyond the amount, ``-`` on a decrease beyond it, no sign on either. ``scores:changed``
    fails when the two runs' pairs or scores are not identical.

    >>> parse_gate("eer:+0.5pp")
    Gate(spec='eer:+0.5pp', metric='eer', direction=1, amount=0.5, unit='pp')
    """
    text = spec.strip()
    if ":" not in text:
        raise GateError(f"--fail-if '{spec}': expected METRIC:CHANGE ({_EXAMPLES})")
    metric, change = (part.strip() for part in text.split(":", 1))
    metric = metric.lower()
    if metric == "scores":
        if change.lower() not in ("changed", "differ", "different"):
            raise GateError(f"--fail-if '{spec}': the only gate on scores is 'scores:changed'")
        return Gate(text, "scores")
    if metric not in METRICS and metric not in BENCHMARK_METRICS:
        close = difflib.get_close_matches(metric, [*METRICS, *BENCHMARK_METRICS, "scores"], n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise GateError(f"--fail-if '{spec}': unknown metric '{metric}'{hint} "
                        f"(known: {', '.join(METRICS)}, scores; {', '.join(BENCHMARK_METRICS)} for "
                        f"pytest-benchmark files)")
    m = _GATE_RE.match(change.replace(" ", ""))
    if not m:
        if re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)", change):
            raise GateError(f"--fail-if '{spec}': '{change}' has no unit; write pp (percentage points, "
                            f"for rates) or % (relative to the base value), {_EXAMPLES}")
        raise GateError(f"--fail-if '{spec}': '{change}' is not a change; write an optional sign, a "
                        f"number and pp or %, {_EXAMPLES}")
    unit = m.group("unit")
    if unit == "pp" and metric_def(metric).kind != "rate":
        raise GateError(f"--fail-if '{spec}': pp (percentage points) applies to rates; {metric} is in "
                        f"{metric_def(metric).unit}: use a relative change such as {metric}:+10%")
    amount = float(m.group("num"))
    if not math.isfinite(amount):
        raise GateError(f"--fail-if '{spec}': the amount must be a finite number")
    direction = {"+": 1, "-": -1, "": 0}[m.group("sign")]
    return Gate(text, metric, direction, amount, unit)


def parse_gates(specs: Sequence[str]) -> list[Gate]:
    """Parse several specifications; each may also hold several separated by commas."""
    return [parse_gate(part) for spec in specs for part in spec.split(",") if part.strip()]


# --------------------------------------------------------------------------- loading
@dataclass
class Entry:
    """One run of a side: its summary, and its records when it came from a run directory."""

    summary: dict[str, Any]
    run: Any = None  # bench.report.RunData or None
    label: str | None = None  # the name of a pytest benchmark

    @property
    def key(self) -> tuple[str, str, str, str]:
        s = self.summary
        return (s["dataset"], s["protocol"], s["extractor"], s["matcher"])

    @property
    def name(self) -> str:
        if self.label is not None:
            return self.label
        return "/".join(self.key[:2]) + "/" + f"{self.key[2]}+{self.key[3]}"


def benchmark_files(path: Path) -> list[Path]:
    """The pytest-benchmark JSON files of a side: the file itself, or every ``*.json`` of a
    folder that holds no run (several passes measured alternately with the other side's are
    pooled); [] when the side is not pytest-benchmark output."""
    path = Path(path)
    if path.is_dir():
        if (path / "manifest.json").exists() or any(path.rglob("manifest.json")):
            return []
        files = sorted(path.glob("*.json"))
        return files if files and all(read_pytest_benchmark(f) is not None for f in files) else []
    return [path] if read_pytest_benchmark(path) is not None else []


def read_pytest_benchmark(path: Path) -> dict[str, Any] | None:
    """The content of a pytest-benchmark JSON file, or None when ``path`` is not one."""
    path = Path(path)
    if not path.is_file() or path.suffix.lower() != ".json":
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if isinstance(doc, dict) and isinstance(doc.get("benchmarks"), list) and "machine_info" in doc:
        return doc
    return None


def load_benchmarks(path: Path) -> list[Entry]:
    """The benchmarks of a side's pytest-benchmark files (see :func:`benchmark_files`), each
    with its per-round times in seconds, pooled over the files."""
    files = benchmark_files(path)
    if not files:
        raise RunDirError(f"{path}: neither a pytest-benchmark JSON file nor a folder of them")
    times: dict[tuple[str, str], list[float]] = {}
    for f in files:
        for b in read_pytest_benchmark(f)["benchmarks"]:  # type: ignore[index]
            name = str(b.get("fullname") or b.get("name"))
            data = (b.get("stats") or {}).get("data")
            if not data:
                raise RunDirError(f"{f}: benchmark {name} has no per-round times; run pytest with "
                                  f"--benchmark-save-data so that the file keeps them")
            times.setdefault((str(b.get("group") or ""), name), []).extend(float(t) for t in data)
    if not times:
        raise RunDirError(f"{path}: holds no benchmarks")
    entries = []
    for (group, name), t in times.items():
        summary = {"dataset": "pytest-benchmark", "protocol": group, "extractor": name, "matcher": "",
                   "run": str(path), "indicators": {}, "speed": {"time_s": {"median": float(np.median(t))}},
                   "timings": {"time_s": t}, "n_files": len(files)}
        entries.append(Entry(summary, label=name))
    return entries


def load_side(path: Path) -> list[Entry]:
    """The runs of one side of a comparison (see the module docstring)."""
    from bench.report.rundata import load_run
    from bench.report.summary import SUMMARY_SCHEMA_VERSION, summarise

    path = Path(path)
    if path.is_file():
        try:
            doc = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RunDirError(f"{path}: not a readable JSON summary ({exc})") from exc
        if not isinstance(doc, dict) or doc.get("kind") != "report-summary":
            raise RunDirError(f"{path}: not a FingerBench summary.json (written by 'fingerbench report'); "
                              f"give a run directory or a report's summary.json")
        if doc.get("schema_version") != SUMMARY_SCHEMA_VERSION:
            raise RunDirError(f"{path}: summary schema version {doc.get('schema_version')!r}, this "
                              f"FingerBench reads version {SUMMARY_SCHEMA_VERSION}")
        runs = doc.get("runs")
        if not isinstance(runs, list) or not runs:
            raise RunDirError(f"{path}: holds no runs")
        for i, s in enumerate(runs):
            missing = [k for k in ("dataset", "protocol", "extractor", "matcher", "indicators", "speed",
                                   "scores_sha256", "timings") if k not in s]
            if missing:
                raise RunDirError(f"{path}: run {i} lacks {missing} (edited by hand?)")
        return [Entry(s) for s in runs]
    if not path.is_dir():
        raise RunDirError(f"{path}: no such run directory or summary file")
    if (path / "manifest.json").exists():
        dirs = [path]
    else:
        dirs = sorted(p.parent for p in path.rglob("manifest.json"))
        if not dirs:
            raise RunDirError(f"{path}: neither a run directory (manifest.json is missing) nor a folder "
                              f"holding run directories")
    entries = []
    for d in dirs:
        run = load_run(d)
        entries.append(Entry(summarise(run, n_replicates=0), run))
    return entries


def pair_entries(base: list[Entry], new: list[Entry]) -> tuple[list[tuple[Entry, Entry]], list[str]]:
    """Pairs of runs to compare, and notes on the runs left without a partner."""
    if len(base) == 1 and len(new) == 1:
        return [(base[0], new[0])], []
    notes = []
    for side, entries in (("BASE", base), ("NEW", new)):
        keys = [e.key for e in entries]
        dup = sorted({k for k in keys if keys.count(k) > 1})
        if dup:
            raise RunDirError(f"{side} holds several runs of {'/'.join(dup[0])}; give one run directory "
                              f"per side, or folders with one run per dataset, protocol and algorithm")
    new_by_key = {e.key: e for e in new}
    pairs = [(b, new_by_key[b.key]) for b in base if b.key in new_by_key]
    base_keys = {b.key for b in base}
    notes += [f"only in BASE: {b.name}" for b in base if b.key not in new_by_key]
    notes += [f"only in NEW: {n.name}" for n in new if n.key not in base_keys]
    return pairs, notes


# -------------------------------------------------------------------------- compare
def scores_identity(base: Entry, new: Entry) -> dict[str, Any]:
    """Whether both runs have the same pairs and the same scores (and statuses)."""
    if base.run is not None and new.run is not None:
        a = base.run.comparisons[["probe", "reference", "kind", "score_value"]]
        b = new.run.comparisons[["probe", "reference", "kind", "score_value"]]
        m = a.merge(b, on=["probe", "reference"], how="outer", suffixes=("_base", "_new"), indicator=True)
        only_base = int((m["_merge"] == "left_only").sum())
        only_new = int((m["_merge"] == "right_only").sum())
        both = m[m["_merge"] == "both"]
        kind_diff = both["kind_base"] != both["kind_new"]
        sb, sn = both["score_value_base"].to_numpy(float), both["score_value_new"].to_numpy(float)
        ok = (both["kind_base"] == "ok").to_numpy() & (both["kind_new"] == "ok").to_numpy()
        score_diff = ok & ~((sb == sn) | (np.isnan(sb) & np.isnan(sn)))
        n_diff = int(kind_diff.sum() + score_diff.sum())
        max_abs = float(np.max(np.abs(sb[score_diff] - sn[score_diff]))) if score_diff.any() else 0.0
        identical = only_base == 0 and only_new == 0 and n_diff == 0
        if identical:
            text = f"identical ({len(both)} pairs, same scores)"
        else:
            parts = []
            if only_base or only_new:
                parts.append(f"pair lists differ ({only_base} pairs only in BASE, {only_new} only in NEW)")
            if n_diff:
                parts.append(f"{n_diff} of {len(both)} common pairs differ"
                             + (f" (largest score change {max_abs:g})" if score_diff.any() else "")
                             + (f", {int(kind_diff.sum())} in status" if kind_diff.any() else ""))
            text = "; ".join(parts)
        return {"identical": identical, "method": "pair by pair", "n_common": int(len(both)),
                "only_in_base": only_base, "only_in_new": only_new, "n_different": n_diff,
                "max_abs_score_change": max_abs, "text": text}
    same = base.summary["scores_sha256"] == new.summary["scores_sha256"]
    return {"identical": same, "method": "digest",
            "text": "identical (same pairs and scores; by digest)" if same
            else "differ (by digest; give run directories to see which pairs)"}


def _statistic(samples: np.ndarray, statistic: str, axis: int | None = None) -> Any:
    """The median of per-item times, or the rate (items / total time) for ``"rate"``."""
    if statistic == "rate":
        return samples.shape[-1] / np.sum(samples, axis=axis)
    return np.median(samples, axis=axis)


def speed_change(x: np.ndarray, y: np.ndarray, *, statistic: str, alpha: float, min_effect: float,
                 n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Relative change from ``x`` to ``y`` (per-item times) of their median, or of their rate
    (items / total time, see :func:`bench.metrics.summary.speed_summary`) for ``statistic="rate"``:
    a Mann-Whitney U p-value, a bootstrap interval of the change, and the noise verdict."""
    from scipy.stats import mannwhitneyu

    x = np.asarray(x, float)
    y = np.asarray(y, float)
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    if x.size < 2 or y.size < 2:
        return {"p_value": None, "ci": None, "within_noise": None,
                "note": "too few timings for a noise estimate"}
    sx, sy = float(_statistic(x, statistic)), float(_statistic(y, statistic))
    p = float(mannwhitneyu(x, y, alternative="two-sided").pvalue)
    rng = np.random.default_rng(seed)
    xs = x if x.size <= 5000 else rng.choice(x, 5000, replace=False)
    ys = y if y.size <= 5000 else rng.choice(y, 5000, replace=False)
    rel = []
    chunk = max(1, 2_000_000 // max(xs.size, ys.size))
    for start in range(0, n_boot, chunk):
        r = min(chunk, n_boot - start)
        bx = _statistic(xs[rng.integers(0, xs.size, (r, xs.size))], statistic, axis=1)
        by = _statistic(ys[rng.integers(0, ys.size, (r, ys.size))], statistic, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            rel.append(by / bx - 1)
    rel_all = np.concatenate(rel)
    rel_all = rel_all[np.isfinite(rel_all)]
    ci = [float(v) for v in np.quantile(rel_all, [0.025, 0.975])] if rel_all.size else None
    change = sy / sx - 1
    within = bool(p >= alpha or abs(change) < min_effect)
    return {"p_value": p, "ci": ci, "within_noise": within, "n_base": int(x.size), "n_new": int(y.size)}


def _speed_unknown(summary: dict[str, Any]) -> bool:
    """Whether a run has no timings at all (imported scores: its speed is unknown, not zero)."""
    return str((summary.get("speed") or {}).get("note", "")).startswith("unknown")


def _short_reason(summary: dict[str, Any], name: str) -> str:
    if METRICS[name].kind != "rate" and _speed_unknown(summary):
        return "unknown (imported scores, no timings)"
    reason = (summary.get("indicators", {}).get(name) or {}).get("reason") or "not available"
    return reason.split(" (smallest")[0]


def compare_metric(m: MetricDef, base: dict[str, Any], new: dict[str, Any], *, alpha: float,
                   min_effect: float) -> dict[str, Any]:
    b, n = m.value(base), m.value(new)
    out: dict[str, Any] = {"metric": m.name, "title": m.title, "kind": m.kind, "unit": m.unit,
                           "better": m.better, "base": b, "new": n, "delta": None, "relative": None}
    if b is None or n is None:
        reasons = {side: _short_reason(s, m.name) for side, s, v in (("BASE", base, b), ("NEW", new, n))
                   if v is None}
        if len(reasons) == 2 and len(set(reasons.values())) == 1:
            out["note"] = f"{reasons['BASE']} in both"
        else:
            out["note"] = "; ".join(f"{side}: {r}" for side, r in reasons.items())
        return out
    out["delta"] = n - b
    out["relative"] = (n / b - 1) if b != 0 else (0.0 if n == 0 else math.copysign(math.inf, n - b))
    if m.samples:
        xs = base.get("timings", {}).get(m.samples) or []
        ys = new.get("timings", {}).get(m.samples) or []
        out.update(speed_change(np.asarray(xs, float), np.asarray(ys, float), statistic=m.statistic,
                                alpha=alpha, min_effect=min_effect))
    return out


def check_gate(gate: Gate, row: dict[str, Any], identity: dict[str, Any]) -> dict[str, Any]:
    """Apply one gate to one pair of runs: ``{"passed", "skipped", "message"}``."""
    if gate.metric == "scores":
        return {"passed": bool(identity["identical"]), "skipped": False, "message": identity["text"]}
    m = metric_def(gate.metric)
    b, n = row["base"], row["new"]
    if b is None and n is None:
        return {"passed": True, "skipped": True, "message": f"not checked: {row.get('note', 'no value')}"}
    if b is None or n is None:
        if m.kind != "rate" and "unknown (imported scores" in row.get("note", ""):
            return {"passed": True, "skipped": True,
                    "message": f"not checked: speed {row['note']}"}
        return {"passed": n is not None, "skipped": False,
                "message": f"{'BASE' if b is None else 'NEW'} has no value ({row.get('note', '')})"}
    if gate.unit == "pp":
        change, shown = (n - b) * 100, f"{(n - b) * 100:+.2f} pp"
    else:
        change = row["relative"] * 100
        shown = f"{change:+.1f} %" if math.isfinite(change) else f"from 0 to {n:g}"
    beyond = (change > gate.amount if gate.direction > 0 else change < -gate.amount if gate.direction < 0
              else abs(change) > gate.amount)
    if beyond and m.samples and row.get("within_noise"):
        p = row.get("p_value")
        return {"passed": True, "skipped": False,
                "message": f"{shown}, within noise (p = {p:.3g}); limit {gate.amount:g} {gate.unit}"}
    text = f"{shown} (limit {'+' if gate.direction > 0 else '-' if gate.direction < 0 else '±'}"
    text += f"{gate.amount:g} {gate.unit})"
    if m.samples and row.get("p_value") is not None:
        text += f", p = {row['p_value']:.3g}"
    return {"passed": not beyond, "skipped": False, "message": text}


def compare(base_path: Path, new_path: Path, gates: Sequence[Gate] = (), *, alpha: float = 0.01,
            min_effect: float = 0.05) -> dict[str, Any]:
    """Compare two sides; the result is JSON-serialisable (see ``fingerbench compare --json``)."""
    if benchmark_files(base_path) or benchmark_files(new_path):
        return compare_benchmarks(base_path, new_path, gates, alpha=alpha, min_effect=min_effect)
    off = [g.spec for g in gates if g.metric in BENCHMARK_METRICS]
    if off:
        raise RunDirError(f"--fail-if {off[0]}: metric '{off[0].split(':')[0]}' applies to "
                          f"pytest-benchmark files, not to runs")
    base, new = load_side(base_path), load_side(new_path)
    pairs, notes = pair_entries(base, new)
    if not pairs:
        raise RunDirError(f"no run of {base_path} has a counterpart in {new_path} (runs are paired by "
                          f"dataset, protocol, extractor and matcher)")
    results = []
    gate_results = []
    for b, n in pairs:
        warnings = []
        sb, sn = b.summary, n.summary
        gb, gn = sb.get("group") or [], sn.get("group") or []
        if b.key[:2] != n.key[:2]:
            warnings.append(f"different datasets or protocols ({'/'.join(b.key[:2])} vs "
                            f"{'/'.join(n.key[:2])}): accuracy deltas compare different data")
        elif gb and gn and (gb[1] != gn[1] or gb[3] != gn[3]):
            warnings.append("same dataset and protocol names but different images or pair lists "
                            "(digests differ): accuracy deltas compare different data")
        identity = scores_identity(b, n)
        rows = [compare_metric(m, sb, sn, alpha=alpha, min_effect=min_effect) for m in METRICS.values()]
        by_name = {r["metric"]: r for r in rows}
        for g in gates:
            res = check_gate(g, by_name.get(g.metric, {}), identity)
            gate_results.append({"gate": g.spec, "base": b.name, "new": n.name, **res})
        results.append({"base": {"name": b.name, "source": sb.get("run")},
                        "new": {"name": n.name, "source": sn.get("run")},
                        "warnings": warnings, "scores": identity, "metrics": rows})
    if gates:
        # A baseline run that NEW no longer has cannot be checked: fail. A run only in NEW
        # (a new dataset or algorithm) has nothing to regress against: it is only noted.
        for note in notes:
            if note.startswith("only in BASE"):
                gate_results.append({"gate": "(pairing)", "base": note.split(": ", 1)[1], "new": "",
                                     "passed": False, "skipped": False,
                                     "message": f"{note}: NEW has no such run to check the gates on"})
    return {"schema_version": COMPARE_SCHEMA_VERSION, "base": str(base_path), "new": str(new_path),
            "alpha": alpha, "min_effect": min_effect, "notes": notes, "comparisons": results,
            "gates": gate_results, "passed": all(g["passed"] for g in gate_results)}


def compare_benchmarks(base_path: Path, new_path: Path, gates: Sequence[Gate] = (), *, alpha: float = 0.01,
                       min_effect: float = 0.05) -> dict[str, Any]:
    """Compare two pytest-benchmark files benchmark by benchmark (metric ``time``), with the
    statistics of run comparisons: a change is within noise when the Mann-Whitney U test of the
    per-round times gives p >= ``alpha`` or the median moves by less than ``min_effect``."""
    off = [g.spec for g in gates if g.metric not in BENCHMARK_METRICS]
    if off:
        raise RunDirError(f"--fail-if {off[0]}: pytest-benchmark files have only the metric "
                          f"{', '.join(BENCHMARK_METRICS)} (e.g. --fail-if time:+10%)")
    base, new = load_benchmarks(base_path), load_benchmarks(new_path)
    new_by_key = {e.key: e for e in new}
    pairs = [(b, new_by_key[b.key]) for b in base if b.key in new_by_key]
    notes = [f"only in BASE: {b.name}" for b in base if b.key not in new_by_key]
    notes += [f"only in NEW: {n.name}" for n in new if n.key not in {b.key for b in base}]
    if not pairs:
        raise RunDirError(f"no benchmark of {base_path} has a counterpart in {new_path} (paired by name)")
    results, gate_results = [], []
    identity = {"identical": None, "method": "none", "text": "not compared (timings only)"}
    for b, n in pairs:
        rows = [compare_metric(m, b.summary, n.summary, alpha=alpha, min_effect=min_effect)
                for m in BENCHMARK_METRICS.values()]
        by_name = {r["metric"]: r for r in rows}
        for g in gates:
            gate_results.append({"gate": g.spec, "base": b.name, "new": n.name,
                                 **check_gate(g, by_name[g.metric], identity)})
        results.append({"base": {"name": b.name, "source": str(base_path)},
                        "new": {"name": n.name, "source": str(new_path)},
                        "warnings": [], "scores": identity, "metrics": rows})
    if gates:
        gate_results += [{"gate": "(pairing)", "base": note.split(": ", 1)[1], "new": "", "passed": False,
                          "skipped": False, "message": f"{note}: NEW has no such benchmark to check"}
                         for note in notes if note.startswith("only in BASE")]
    return {"schema_version": COMPARE_SCHEMA_VERSION, "base": str(base_path), "new": str(new_path),
            "alpha": alpha, "min_effect": min_effect, "notes": notes, "comparisons": results,
            "gates": gate_results, "passed": all(g["passed"] for g in gate_results)}


# --------------------------------------------------------------------------- display
def _fmt_value(m: dict[str, Any], v: float | None) -> str:
    if v is None:
        return "n/a"
    if m["kind"] == "rate":
        return f"{100 * v:.2f} %"
    if m["unit"] in ("/s", "B", "µs"):
        return f"{v:,.0f}"
    if m["unit"] == "s":
        return f"{v * 1e3:.4g} ms"
    return f"{v:.2f}"


def _fmt_change(m: dict[str, Any]) -> str:
    if m["delta"] is None:
        return ""
    if m["kind"] == "rate":
        return f"{100 * m['delta']:+.2f} pp"
    rel = m["relative"]
    return f"{100 * rel:+.1f} %" if math.isfinite(rel) else "from 0"


def format_text(result: dict[str, Any]) -> str:
    """The human-readable form of :func:`compare`'s result."""
    lines = []
    for note in result["notes"]:
        lines.append(f"note: {note}")
    for c in result["comparisons"]:
        lines.append(f"BASE {c['base']['name']}  ({c['base']['source']})")
        lines.append(f"NEW  {c['new']['name']}  ({c['new']['source']})")
        for w in c["warnings"]:
            lines.append(f"  warning: {w}")
        lines.append(f"  scores: {c['scores']['text']}")
        lines.append(f"  {'metric':<24} {'base':>12} {'new':>12} {'change':>11}")
        for m in c["metrics"]:
            verdict = ""
            if m.get("within_noise") is not None:
                ci = m.get("ci")
                ci_txt = f", 95 % CI [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}] %" if ci else ""
                verdict = ("  within noise" if m["within_noise"] else "  significant") + \
                    f" (p = {m['p_value']:.2g}{ci_txt})"
            elif m["delta"] is None and m.get("note"):
                verdict = f"  {m['note']}"
            lines.append(f"  {m['title']:<24} {_fmt_value(m, m['base']):>12} {_fmt_value(m, m['new']):>12} "
                         f"{_fmt_change(m):>11}{verdict}")
        lines.append("")
    if result["gates"]:
        lines.append("gates:")
        for g in result["gates"]:
            status = "SKIP" if g.get("skipped") else ("PASS" if g["passed"] else "FAIL")
            where = f" {g['new']}" if g["new"] else ""
            lines.append(f"  {status} {g['gate']}{where}: {g['message']}")
        lines.append("all gates passed" if result["passed"] else "some gates FAILED")
    return "\n".join(lines)
