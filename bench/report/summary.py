"""The numbers of a report for one run: FVC indicators with N and bootstrap intervals,
speed, and provenance, as a JSON-serialisable dict (one entry of ``summary.json``).

Every value and speed figure is the run's own summary (``metrics.json``, see
:func:`bench.metrics.summary.load_summary`); only the bootstrap intervals are computed here,
from the records.

``summary.json`` is also an input of ``fingerbench compare``: it keeps each run's
per-item timings (comparisons subsampled to at most :data:`MAX_TIMINGS`) and a digest
of its scores, so two reports can be compared without the run directories.
"""

from __future__ import annotations

import time
from typing import Any, TypedDict

import numpy as np

from bench.metrics import bootstrap as B
from bench.report.rundata import RunData

SUMMARY_SCHEMA_VERSION = 2
#: Most per-comparison timings kept in summary.json (a deterministic subsample).
MAX_TIMINGS = 5000

#: Display names of the indicators, in report order.
INDICATOR_NAMES = {
    "eer": "EER", "fmr100": "FMR100", "fmr1000": "FMR1000", "fmr10000": "FMR10000",
    "zero_fmr": "ZeroFMR", "zero_fnmr": "ZeroFNMR", "rej_enroll": "REJ_ENROLL",
    "rej_match": "REJ_MATCH", "eer_star": "EER*",
}


class Indicator(TypedDict):
    """One indicator of one run (rates as fractions, not percent)."""

    value: float | None      # None when unresolvable or undefined; see reason
    ci_low: float | None     # bootstrap interval (None when there is none)
    ci_high: float | None
    n_genuine: int | None    # the N it rests on
    n_impostor: int | None
    n: int | None            # images (REJ_ENROLL) or comparisons (REJ_MATCH, EER*)
    count: int | None        # failures, for REJ_ENROLL and REJ_MATCH
    reason: str | None       # why value is None, or a remark


def _subsample(values: np.ndarray, limit: int) -> np.ndarray:
    if values.size <= limit:
        return values
    idx = np.linspace(0, values.size - 1, limit).round().astype(int)
    return values[idx]


def speed(run: RunData) -> dict[str, Any]:
    """The run's speed and template sizes as its summary holds them (see
    :func:`bench.metrics.summary.speed_summary`): extraction and comparison time distributions,
    ``comparisons_per_second_per_core`` (comparisons / total comparison seconds)."""
    sp = run.summary["speed"]
    enrolment = run.summary["enrolment"]
    return {"extraction_ms": sp["extraction_ms"], "comparison_us": sp["comparison_us"],
            "comparisons_per_second_per_core": sp["comparisons_per_second_per_core"],
            "template_bytes": enrolment["template_bytes"], "minutiae": enrolment["minutiae"],
            "note": sp["note"]}


def indicators(run: RunData, *, n_replicates: int = 1000, seed: int = 0,
               level: float = 0.95) -> tuple[dict[str, Indicator], dict[str, Any]]:
    """FVC indicators of a run with subject-bootstrap intervals, and the bootstrap's settings."""
    c = run.comparisons
    g = c["genuine"].to_numpy(bool)
    kind = c["kind"].to_numpy(str)
    acc = run.summary["accuracy"]
    enrolment = run.summary["enrolment"]
    ext = run.extractions
    failed_ext = (ext["status"] != "ok").to_numpy()
    if n_replicates > 0:
        boot = B.subject_bootstrap(
            c["similarity"].to_numpy(float), g, kind, c["probe_subject"].to_numpy(str),
            c["reference_subject"].to_numpy(str), enrol_subjects=ext["subject"].to_numpy(str),
            enrol_failed=failed_ext, n_replicates=n_replicates, seed=seed, level=level)
    else:  # intervals not wanted (e.g. by compare, which reports deltas only)
        none = B.Interval(None, None, 0, "no bootstrap requested")
        boot = B.BootstrapResult({k: none for k in B.INDICATORS}, 0, 0, level, seed)
    ng, ni = acc["n_genuine"], acc["n_impostor"]
    star = acc["eer_star"]
    ops = acc["operating_points"]

    def make(value: float | None, name: str, **kw: Any) -> Indicator:
        iv = boot.intervals[name]
        out: Indicator = {"value": value, "ci_low": iv.low, "ci_high": iv.high, "n_genuine": ng,
                          "n_impostor": ni, "n": None, "count": None, "reason": None}
        out.update(kw)  # type: ignore[typeddict-item]
        if value is None and out["reason"] is None and iv.reason != "no bootstrap requested":
            out["reason"] = iv.reason
        if value is None:
            out["ci_low"] = out["ci_high"] = None
        return out

    n_rej = acc["rej_ngra"] + acc["rej_nira"]
    result: dict[str, Indicator] = {
        "eer": make(acc["eer"], "eer", reason=acc["eer_reason"]),
        **{k: make(ops[k]["value"], k, reason=ops[k]["reason"]) for k in
           ("fmr100", "fmr1000", "fmr10000", "zero_fmr", "zero_fnmr")},
        "rej_enroll": make(enrolment["fte_rate"], "rej_enroll", n=enrolment["n_images"],
                           count=enrolment["rej_enroll"], n_genuine=None, n_impostor=None),
        "rej_match": make(n_rej / (ng + ni) if ng + ni else None, "rej_match", n=int(ng + ni),
                          count=int(n_rej), n_genuine=None, n_impostor=None),
        "eer_star": make(star["eer"], "eer_star", n_genuine=star["n_genuine"],
                         n_impostor=star["n_impostor"], reason=star["reason"]),
    }
    extra = {"eer_interval": [acc["eer_low"], acc["eer_high"]],
             "thresholds": thresholds(run, boot, result),
             "eer_star_interval": [star["eer_low"], star["eer_high"]],
             "rej_ngra": acc["rej_ngra"], "rej_nira": acc["rej_nira"],
             "n_enrol_failed_comparisons": acc["n_enrol_failed_comparisons"],
             "auc": acc["auc"], "bootstrap": {k: v for k, v in boot.to_dict().items() if k not in ("intervals", "thresholds")}}
    return result, extra


#: Display names of the operating points of the thresholds table, in report order.
THRESHOLD_NAMES = {"eer": "EER", "fmr100": "FMR100", "fmr1000": "FMR1000", "fmr10000": "FMR10000"}


def _threshold_value(t: Any) -> float | None:
    """A stored threshold (float, "inf"/"-inf" or None) as a finite float, or None."""
    if t is None:
        return None
    t = float(t)
    return t if np.isfinite(t) else None


def thresholds(run: RunData, boot: B.BootstrapResult, ind: dict[str, Indicator]) -> dict[str, dict[str, Any]]:
    """The raw score threshold at the EER and at FMR100/FMR1000/FMR10000, with its bootstrap
    interval (the threshold of each replicate's error curve, :data:`bench.metrics.bootstrap.THRESHOLDS`).

    Values are in the matcher's own scale: a comparison is accepted when its score is
    ``>= threshold`` (``<=`` for a distance matcher, ``accept`` says which). The point values
    come from the run's summary; an unresolvable point has no threshold, with its reason.
    """
    acc = run.summary["accuracy"]
    sign = 1.0 if run.higher_is_better else -1.0
    stored = {"eer": acc.get("eer_threshold"),
              **{k: acc["operating_points"][k].get("threshold") for k in THRESHOLD_NAMES if k != "eer"}}
    out: dict[str, dict[str, Any]] = {}
    for name in THRESHOLD_NAMES:
        t = _threshold_value(stored[name]) if ind[name]["value"] is not None else None
        iv = boot.thresholds.get(name)
        low = high = None
        if t is not None and iv is not None and iv.low is not None:
            low, high = sorted((sign * iv.low, sign * iv.high))
        reason = ind[name]["reason"] if ind[name]["value"] is None else (
            None if t is not None else "the threshold is infinite (failures decide this point)")
        out[name] = {"threshold": None if t is None else sign * t, "ci_low": low, "ci_high": high,
                     "n_used": iv.n_used if iv is not None and low is not None else 0,
                     "rate": ind[name]["value"], "accept": ">=" if run.higher_is_better else "<=",
                     "reason": reason}
    return out


def provenance(run: RunData) -> dict[str, Any]:
    m = run.manifest
    env = m.get("environment", {})
    ds = m["dataset"]
    return {
        "dataset": {k: ds.get(k) for k in ("name", "sha256", "dpi", "image_size", "n_samples",
                                           "n_problems", "params", "root")},
        "protocol": m["protocol"],
        "extractor": m["extractor"],
        "matcher": m["matcher"],
        "machine": env.get("machine", {}),
        "packages": env.get("packages", {}),
        "source": env.get("source", {}),
        "created": m.get("created"),
        "finished": m.get("finished"),
        "settings": m.get("settings", {}),
    }


def summarise(run: RunData, *, n_replicates: int = 1000, seed: int = 0, level: float = 0.95) -> dict[str, Any]:
    """Everything the report and ``compare`` need to know about one run."""
    ind, extra = indicators(run, n_replicates=n_replicates, seed=seed, level=level)
    return {
        "run": str(run.path),
        "dataset": run.dataset,
        "protocol": run.protocol,
        "extractor": run.extractor,
        "matcher": run.matcher,
        "label": run.label,
        "group": list(run.group),
        "indicators": ind,
        "accuracy_details": extra,
        "speed": speed(run),
        "scores_sha256": run.scores_digest(),
        "n_pairs": int(len(run.comparisons)),
        "timings": {
            "extraction_ms": (run.extraction_seconds() * 1e3).round(4).tolist(),
            "comparison_us": _subsample(run.comparison_seconds() * 1e6, MAX_TIMINGS).round(3).tolist(),
        },
        "provenance": provenance(run),
        "warnings": list(run.warnings),
        **({"quality": run.summary["quality"]} if run.summary.get("quality") else {}),
    }


def summary_document(summaries: list[dict[str, Any]], *, notes: list[str] | None = None) -> dict[str, Any]:
    """The content of ``summary.json``."""
    return {
        "schema_version": SUMMARY_SCHEMA_VERSION,
        "tool": "fingerbench",
        "kind": "report-summary",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "notes": notes or [],
        "runs": summaries,
    }
