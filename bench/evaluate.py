"""Derive metrics from a run directory's raw records (never the other way round)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench import metrics as M
from bench.store import COMPARISON_OK, ENROL_FAILED, EXTRACTION_OK, RunDir, RunDirError, write_json


def load_scores(run: RunDir) -> pd.DataFrame:
    """The comparisons of a run in the protocol's pair order, one row per pair.

    Raises RunDirError when scores are missing for pairs of the protocol, or when a row
    names a pair the protocol does not have.
    """
    pairs = pd.read_csv(run.pairs, dtype={"probe": str, "reference": str})
    scores = pd.read_csv(run.scores, dtype={"probe": str, "reference": str, "status": str, "error": str,
                                            "probe_subject": str, "reference_subject": str})
    scores = scores.drop_duplicates(["probe", "reference"], keep="last")
    merged = pairs.merge(scores, on=["probe", "reference"], how="left", suffixes=("", "_score"),
                         indicator=True)
    missing = merged[merged["_merge"] == "left_only"]
    if len(missing):
        first = missing.iloc[0]
        raise RunDirError(
            f"{run.scores}: {len(missing)} of {len(pairs)} pairs of the protocol have no score "
            f"(first: {first['probe']} vs {first['reference']}); the run is incomplete: "
            f"run it again to finish it"
        )
    extra = len(scores) - len(merged)
    if extra > 0:
        raise RunDirError(f"{run.scores}: {extra} rows name pairs that are not in {run.pairs.name}")
    bad = merged[merged["genuine"].astype(int) != merged["genuine_score"].astype(int)]
    if len(bad):
        raise RunDirError(f"{run.scores}: the genuine flag of {len(bad)} rows disagrees with {run.pairs.name}")
    return merged.drop(columns=["_merge", "genuine_score"])


def comparison_status(status: pd.Series) -> np.ndarray:
    """Map stored statuses to the metric module's three kinds: ok, enrol_failed, failed."""
    s = status.fillna("failed").to_numpy(dtype=object)
    out = np.where(s == COMPARISON_OK, "ok", np.where(s == ENROL_FAILED, "enrol_failed", "failed"))
    return out.astype(str)


def _stats(values: np.ndarray, scale: float) -> dict[str, Any]:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return {"n": 0}
    v = values * scale
    return {"n": int(v.size), "mean": float(v.mean()), "median": float(np.median(v)),
            "p95": float(np.percentile(v, 95)), "min": float(v.min()), "max": float(v.max())}


def speed_and_enrolment(run: RunDir) -> dict[str, Any]:
    ext = pd.read_csv(run.extractions, dtype={"sample": str, "status": str, "error": str})
    ext = ext.drop_duplicates("sample", keep="last")
    ok = ext["status"] == EXTRACTION_OK
    scores = pd.read_csv(run.scores, dtype={"status": str})
    cmp_ok = scores["status"] == COMPARISON_OK
    cmp_seconds = pd.to_numeric(scores.loc[cmp_ok, "seconds"], errors="coerce").to_numpy(float)
    mean_s = float(np.nanmean(cmp_seconds)) if cmp_seconds.size else float("nan")
    med_s = float(np.nanmedian(cmp_seconds)) if cmp_seconds.size else float("nan")
    return {
        "enrolment": {
            "n_images": int(len(ext)),
            "n_enrolled": int(ok.sum()),
            "rej_enroll": int((~ok).sum()),
            "fte_rate": float((~ok).mean()) if len(ext) else None,
            "failures_by_status": {k: int(v) for k, v in ext.loc[~ok, "status"].value_counts().items()},
            "minutiae": _stats(pd.to_numeric(ext.loc[ok, "n_minutiae"], errors="coerce").to_numpy(float), 1.0),
            "template_bytes": _stats(pd.to_numeric(ext.loc[ok, "template_bytes"], errors="coerce").to_numpy(float), 1.0),
        },
        "speed": {
            "extraction_ms": _stats(pd.to_numeric(ext.loc[ok, "seconds"], errors="coerce").to_numpy(float), 1e3),
            "comparison_us": _stats(cmp_seconds, 1e6),
            "comparisons_per_second_per_core": (1.0 / mean_s) if mean_s > 0 else None,
            "comparisons_per_second_per_core_median": (1.0 / med_s) if med_s > 0 else None,
            "note": "per item, measured inside one worker process (one core) after the plugin's "
                    "warm-up; the rate is 1/mean (throughput), the _median variant 1/median; batched "
                    "comparisons report the batch time divided by its size",
        },
    }


def evaluate_run(path: Path, write: bool = True) -> dict[str, Any]:
    """Compute metrics.json for a run directory from its stored records."""
    run = RunDir(Path(path))
    run.check_complete()
    manifest = run.read_manifest()
    df = load_scores(run)
    higher = bool(manifest.get("matcher", {}).get("higher_is_better", True))
    raw = pd.to_numeric(df["score"], errors="coerce").to_numpy(float)
    scores = M.as_similarity(raw, higher)
    genuine = df["genuine"].astype(int).to_numpy().astype(bool)
    status = comparison_status(df["status"])
    result = {
        "schema_version": manifest["schema_version"],
        "computed": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "dataset": manifest["dataset"]["name"],
        "protocol": manifest["protocol"]["name"],
        "extractor": manifest["extractor"]["name"],
        "matcher": manifest["matcher"]["name"],
        "score_direction": "higher is more similar" if higher else "lower is more similar (negated for metrics)",
        "accuracy": M.compute_metrics(scores, genuine, status),
        **speed_and_enrolment(run),
    }
    if write:
        write_json(run.metrics, result)
    return result
