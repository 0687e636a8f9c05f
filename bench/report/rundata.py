"""A run directory read and checked for reporting and comparison.

:func:`load_run` reads the manifest and the three CSV files once, checks that they agree
with each other, and raises :class:`bench.store.RunDirError` naming the file and what is
missing or wrong, so a report never silently draws an incomplete or hand-edited run.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench import metrics as M
from bench.metrics.quality import pair_quality
from bench.metrics.summary import comparison_status, load_quality, load_scores, load_summary
from bench.store import (
    COMPARISON_OK, COMPARISON_STATUSES, ENROL_FAILED, EXTRACTION_FIELDS, EXTRACTION_OK, EXTRACTION_STATUSES,
    PAIR_FIELDS, SCORE_FIELDS, RunDir, RunDirError,
)

log = logging.getLogger(__name__)

#: Comparison statuses the runner writes (see bench.store and bench.engine.isolation).
KNOWN_COMPARISON_STATUSES = COMPARISON_STATUSES
#: Extraction statuses the runner writes; all but "ok" are failures to enrol.
KNOWN_EXTRACTION_STATUSES = EXTRACTION_STATUSES

#: Manifest entries a report needs, as dotted paths.
REQUIRED_MANIFEST_KEYS = (
    "dataset.name", "dataset.sha256", "protocol.name", "protocol.n_genuine", "protocol.n_impostor",
    "extractor.name", "extractor.version", "extractor.params",
    "matcher.name", "matcher.version", "matcher.params", "matcher.higher_is_better",
)


@dataclass
class RunData:
    """One checked run: its manifest and its records, in the protocol's pair order.

    ``comparisons`` has the columns of ``scores.csv`` plus ``similarity`` (the score
    turned into a similarity, NaN for failures), ``kind`` (ok / enrol_failed / failed)
    and ``effective`` (the score with the FVC failure rules applied, see
    :func:`bench.metrics.apply_failures`). ``summary`` is the run's one summary (accuracy,
    failures, speed; :func:`bench.metrics.summary.load_summary`): reports and comparisons take
    every number from it, and the records only for intervals, curves and examples.
    """

    path: Path
    manifest: dict[str, Any]
    comparisons: pd.DataFrame
    extractions: pd.DataFrame
    summary: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    #: per-image quality (``quality.csv``, indexed by sample; NaN where an image has none),
    #: None when the run assessed no quality
    quality: pd.DataFrame | None = None

    # -- identity -------------------------------------------------------------------
    @property
    def dataset(self) -> str:
        return str(self.manifest["dataset"]["name"])

    @property
    def protocol(self) -> str:
        return str(self.manifest["protocol"]["name"])

    @property
    def extractor(self) -> str:
        return str(self.manifest["extractor"]["name"])

    @property
    def matcher(self) -> str:
        return str(self.manifest["matcher"]["name"])

    @property
    def label(self) -> str:
        """``extractor + matcher``, the name of the algorithm in tables and legends."""
        return f"{self.extractor} + {self.matcher}"

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.dataset, self.protocol, self.extractor, self.matcher)

    @property
    def group(self) -> tuple[str, str, str, str]:
        """Runs with the same group can be overlaid: same images, same pair list."""
        return (self.dataset, str(self.manifest["dataset"]["sha256"]), self.protocol,
                str(self.manifest["protocol"].get("pairs_sha256") or self.pairs_digest()))

    @property
    def higher_is_better(self) -> bool:
        return bool(self.manifest["matcher"]["higher_is_better"])

    # -- derived arrays ---------------------------------------------------------------
    @property
    def genuine(self) -> np.ndarray:
        return self.comparisons["genuine"].to_numpy(bool)

    def effective_scores(self, kind: str = "all") -> tuple[np.ndarray, np.ndarray]:
        """``(genuine, impostor)`` similarity scores with failures encoded (FVC rules);
        ``kind="ok"`` keeps only comparisons without any failure (EER*)."""
        df = self.comparisons
        if kind == "ok":
            df = df[df["kind"] == "ok"]
        eff = df["effective"].to_numpy(float)
        g = df["genuine"].to_numpy(bool)
        return eff[g], eff[~g]

    def pairs_digest(self) -> str:
        c = self.comparisons
        text = "".join(f"{p},{r},{int(g)}\n" for p, r, g in zip(c["probe"], c["reference"], c["genuine"]))
        return hashlib.sha256(text.encode()).hexdigest()

    def scores_digest(self) -> str:
        """SHA-256 of (probe, reference, status kind, raw score) in pair order: two runs with
        the same digest have the same pairs and bit-identical scores."""
        c = self.comparisons
        h = hashlib.sha256()
        for p, r, k, s in zip(c["probe"], c["reference"], c["kind"], c["score_value"]):
            h.update(f"{p},{r},{k},{float(s).hex() if k == 'ok' else ''}\n".encode())
        return h.hexdigest()

    def pair_quality(self) -> np.ndarray:
        """The quality of each comparison, the lower of its two images' (NaN: none)."""
        if self.quality is None:
            raise ValueError(f"{self.path}: the run assessed no image quality")
        q = self.quality["quality"]
        c = self.comparisons
        return pair_quality(c["probe"].map(q).to_numpy(float), c["reference"].map(q).to_numpy(float))

    def extraction_seconds(self) -> np.ndarray:
        ok = self.extractions["status"] == EXTRACTION_OK
        s = pd.to_numeric(self.extractions.loc[ok, "seconds"], errors="coerce").to_numpy(float)
        return s[np.isfinite(s)]

    def comparison_seconds(self) -> np.ndarray:
        ok = self.comparisons["kind"] == "ok"
        s = pd.to_numeric(self.comparisons.loc[ok, "seconds"], errors="coerce").to_numpy(float)
        return s[np.isfinite(s)]


def _get(d: dict[str, Any], dotted: str) -> Any:
    cur: Any = d
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            raise KeyError(dotted)
        cur = cur[part]
    return cur


def _check_header(path: Path, expected: list[str]) -> None:
    with open(path, newline="") as f:
        header = f.readline().strip().split(",")
    if header == [""]:
        raise RunDirError(f"{path}: empty file (no header); the run never wrote it")
    missing = [c for c in expected if c not in header]
    if missing:
        raise RunDirError(f"{path}: missing columns {missing} (columns found: {header}); "
                          f"written by another version, or edited by hand")


def _read_csv(path: Path, **kw: Any) -> pd.DataFrame:
    try:
        return pd.read_csv(path, keep_default_na=False, na_values=[""], **kw)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise RunDirError(f"{path}: cannot be read as CSV ({exc})") from exc


def _first(df: pd.DataFrame, n: int = 3) -> str:
    rows = [f"{p} vs {r}" for p, r in zip(df["probe"].head(n), df["reference"].head(n))]
    return ", ".join(rows) + (", ..." if len(df) > n else "")


def load_run(path: Path) -> RunData:
    """Read and check a run directory; raise RunDirError saying what is wrong where."""
    run = RunDir(Path(path))
    run.check_complete()
    manifest = run.read_manifest()
    for key in REQUIRED_MANIFEST_KEYS:
        try:
            _get(manifest, key)
        except KeyError:
            raise RunDirError(f"{run.manifest}: '{key}' is missing (the manifest is incomplete or was "
                              f"edited by hand)") from None
    warnings: list[str] = []
    if manifest.get("status") not in (None, "complete"):
        warnings.append(f"{run.manifest}: status '{manifest.get('status')}': the run may not have finished")

    _check_header(run.pairs, PAIR_FIELDS)
    _check_header(run.scores, SCORE_FIELDS)
    _check_header(run.extractions, EXTRACTION_FIELDS)

    pairs = _read_csv(run.pairs, dtype={"probe": str, "reference": str})
    dup = pairs[pairs.duplicated(["probe", "reference"], keep=False)]
    if len(dup):
        raise RunDirError(f"{run.pairs}: {len(dup)} rows repeat a pair ({_first(dup)})")
    if not pairs["genuine"].isin([0, 1]).all():
        bad = pairs.loc[~pairs["genuine"].isin([0, 1]), "genuine"].head(3).tolist()
        raise RunDirError(f"{run.pairs}: the genuine column must hold 0 or 1, found {bad}")
    prot = manifest["protocol"]
    n_gen, n_imp = int(pairs["genuine"].sum()), int((pairs["genuine"] == 0).sum())
    try:
        stated = (int(prot["n_genuine"]), int(prot["n_impostor"]))
    except (TypeError, ValueError):
        raise RunDirError(f"{run.manifest}: protocol.n_genuine / n_impostor are not whole numbers "
                          f"({prot['n_genuine']!r}, {prot['n_impostor']!r})") from None
    if (n_gen, n_imp) != stated:
        raise RunDirError(
            f"{run.pairs}: {n_gen} genuine and {n_imp} impostor pairs, but {run.manifest.name} says "
            f"{prot['n_genuine']} and {prot['n_impostor']} (one of the two files was changed)")

    try:
        df = load_scores(run)
    except (KeyError, ValueError) as exc:
        raise RunDirError(f"{run.scores}: cannot be matched with {run.pairs.name} ({exc})") from exc
    df["genuine"] = df["genuine"].astype(int).astype(bool)
    status = df["status"].fillna("")
    unknown = sorted(set(status) - set(KNOWN_COMPARISON_STATUSES))
    if unknown:
        raise RunDirError(f"{run.scores}: unknown status {unknown[:5]}; expected one of "
                          f"{list(KNOWN_COMPARISON_STATUSES)}")
    df["score_value"] = pd.to_numeric(df["score"], errors="coerce")
    ok = (status == COMPARISON_OK).to_numpy()
    bad_score = df[ok & ~np.isfinite(df["score_value"].to_numpy(float))]
    if len(bad_score):
        raise RunDirError(f"{run.scores}: {len(bad_score)} rows with status 'ok' have no numeric score "
                          f"({_first(bad_score)})")
    for col in ("probe_subject", "reference_subject"):
        if df[col].isna().any():
            raise RunDirError(f"{run.scores}: column {col} is empty in {int(df[col].isna().sum())} rows")
    same = (df["probe_subject"] == df["reference_subject"]).to_numpy()
    wrong = df[same != df["genuine"].to_numpy()]
    if len(wrong):
        raise RunDirError(
            f"{run.scores}: in {len(wrong)} rows the genuine flag disagrees with the subjects "
            f"({_first(wrong)}); genuine must mean 'same subject' for the subject-level bootstrap")

    ext = _read_csv(run.extractions, dtype={"sample": str, "subject": str, "status": str, "error": str,
                                            "file": str})
    ext = ext.drop_duplicates("sample", keep="last").set_index("sample", drop=False)
    unknown = sorted(set(ext["status"].fillna("")) - set(KNOWN_EXTRACTION_STATUSES))
    if unknown:
        raise RunDirError(f"{run.extractions}: unknown status {unknown[:5]}; expected one of "
                          f"{list(KNOWN_EXTRACTION_STATUSES)}")
    needed = pd.unique(pd.concat([df["probe"], df["reference"]]))
    absent = [s for s in needed if s not in ext.index]
    if absent:
        raise RunDirError(f"{run.extractions}: no row for {len(absent)} samples named in {run.pairs.name} "
                          f"(first: {absent[:3]}); the run is incomplete: run it again to finish it")
    for side in ("probe", "reference"):
        subj = ext.loc[df[side], "subject"].to_numpy(str)
        diff = np.flatnonzero(subj != df[f"{side}_subject"].to_numpy(str))
        if diff.size:
            i = diff[0]
            raise RunDirError(
                f"{run.scores}: {side} {df[side].iloc[i]} has subject {str(df[f'{side}_subject'].iloc[i])!r} "
                f"but {run.extractions.name} says {str(subj[i])!r} ({diff.size} rows disagree)")
    enrolled = ext["status"] == EXTRACTION_OK
    both_enrolled = enrolled.loc[df["probe"]].to_numpy() & enrolled.loc[df["reference"]].to_numpy()
    ghost = (status == ENROL_FAILED).to_numpy()
    if (ghost & both_enrolled).any():
        bad = df[ghost & both_enrolled]
        raise RunDirError(f"{run.scores}: {len(bad)} rows say 'enrol_failed' although "
                          f"{run.extractions.name} has both templates ({_first(bad)})")
    if (~ghost & ~both_enrolled).any():
        bad = df[~ghost & ~both_enrolled]
        raise RunDirError(f"{run.scores}: {len(bad)} rows were compared although {run.extractions.name} "
                          f"records a failed enrolment for one side ({_first(bad)})")

    kind = comparison_status(df["status"])
    similarity = M.as_similarity(df["score_value"].to_numpy(float), bool(manifest["matcher"]["higher_is_better"]))
    df["kind"] = kind
    df["similarity"] = np.where(kind == "ok", similarity, np.nan)
    df["effective"] = M.apply_failures(np.nan_to_num(similarity, nan=0.0), df["genuine"].to_numpy(bool), kind)
    ext = ext.loc[needed]
    quality = load_quality(run, manifest, needed)
    summary, stale = load_summary(run.path)
    warnings += stale
    return RunData(run.path, manifest, df.reset_index(drop=True), ext.reset_index(drop=True), summary, warnings,
                   quality)
