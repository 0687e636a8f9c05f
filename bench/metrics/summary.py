"""Derive metrics from a run directory's raw records (never the other way round).

:func:`evaluate_run` computes the one summary of a run (:class:`RunSummary`: accuracy,
failures, speed) and writes it to ``metrics.json``; :func:`load_summary` is how reports and
comparisons read it. An identification (1:N) run has its own summary, from its searches
and units tables (:func:`evaluate_identification_run`, :func:`load_identification_summary`);
:func:`evaluate_run` computes whichever the run's manifest names.

The records are read strictly: a table whose columns, row lengths, statuses or scores are
not what the runner writes, or whose pair list does not have the digest the manifest
records, is refused with the file, the line and the fault named, never guessed at.
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
from pathlib import Path
from typing import Any, Iterable, NotRequired, TypedDict, cast

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from bench import metrics as M
from bench.metrics import quality as Q
from bench.metrics.identification import DEFAULT_FPIR_TARGETS, compute_identification_metrics
from bench.store import (
    COMPARISON_OK, COMPARISON_STATUSES, ENROL_FAILED, EXTRACTION_FIELDS, EXTRACTION_OK, EXTRACTION_STATUSES,
    PAIR_FIELDS, QUALITY_FIELDS, QUALITY_OK, QUALITY_STATUSES, SCORE_FIELDS, RunDir, RunDirError,
    is_identification_run, write_json,
)


def read_records(path: Path, fields: list[str]) -> pd.DataFrame:
    """A record table as text columns, each row checked to hold exactly the header's fields.

    pandas would fill a short row (a truncated last line) with empty cells, which then
    reads as a failed comparison; this names the file and the line instead. Tables are read
    by pyarrow's CSV parser, which refuses any row whose field count differs from the
    header's (on a million-row score table: a third of the memory and half the time of
    Python's csv module); a table it refuses, or cannot parse, is read again by the csv module,
    which names the first bad line.
    """
    path = Path(path)
    fast = _read_records_arrow(path, fields)
    if fast is not None:
        return fast
    rows: list[list[str]] = []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise RunDirError(f"{path}: empty file (not even a header line)")
            if header != fields:
                raise RunDirError(f"{path}: columns {header}, expected {fields} (renamed, missing or extra "
                                  f"columns: written by another version, or edited by hand)")
            n = len(fields)
            for row in reader:
                if len(row) != n:
                    raise RunDirError(f"{path}, line {reader.line_num}: {len(row)} fields where the header has "
                                      f"{n} (a truncated or damaged row)")
                rows.append(row)
    except FileNotFoundError as exc:
        raise RunDirError(f"{path}: missing") from exc
    except (csv.Error, UnicodeDecodeError) as exc:
        raise RunDirError(f"{path}: cannot be read as CSV ({exc})") from exc
    return pd.DataFrame(rows, columns=fields, dtype=object)


def _read_records_arrow(path: Path, fields: list[str]) -> pd.DataFrame | None:
    """The table as :func:`read_records` returns it, or None when its header is not
    ``fields`` or pyarrow refuses any of it (the slow reader then says what is wrong)."""
    import pyarrow as pa
    from pyarrow import csv as pacsv

    try:
        with open(path, newline="", encoding="utf-8") as f:
            if next(csv.reader(f), None) != fields:
                return None
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(skip_rows=1, column_names=fields),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(column_types={f: pa.string() for f in fields},
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False))
    except (OSError, csv.Error, UnicodeDecodeError, pa.ArrowException):
        return None
    return table.to_pandas()


def _line(df: pd.DataFrame, mask: np.ndarray) -> int:
    """Line number (header = 1) of the first row selected by ``mask``; rows are single lines."""
    return int(np.flatnonzero(mask)[0]) + 2


def _check_values(path: Path, df: pd.DataFrame, column: str, allowed: set[str] | tuple[str, ...]) -> None:
    bad = ~df[column].isin(list(allowed)).to_numpy()
    if bad.any():
        values = sorted(set(df.loc[bad, column]))
        raise RunDirError(f"{path}, line {_line(df, bad)}: unknown {column} {values[:5]} in {int(bad.sum())} rows; "
                          f"expected one of {list(allowed)}")


def _pairs_digest(pairs: pd.DataFrame) -> str:
    """SHA-256 of a pair list, as bench.protocols.PairList.digest computes it."""
    h = hashlib.sha256()
    for p, r, g in zip(pairs["probe"], pairs["reference"], pairs["genuine"]):
        h.update(f"{p}\t{r}\t{int(g)}\n".encode())
    return h.hexdigest()


def _check_dataset_digest(run: RunDir, manifest: dict[str, Any]) -> None:
    """The dataset digest (part of the run's identity) must be the digest of the recorded file digests."""
    ds = manifest.get("dataset") or {}
    files, recorded = ds.get("files_sha256"), ds.get("sha256")
    if not isinstance(files, dict) or recorded is None:
        return
    now = hashlib.sha256("".join(f"{k}:{v}\n" for k, v in sorted(files.items())).encode()).hexdigest()
    if now != recorded:
        raise RunDirError(f"{run.manifest}: dataset.sha256 is not the digest of dataset.files_sha256 "
                          f"(the manifest was edited)")


def _nan_if_empty(col: pd.Series) -> pd.Series:
    return col.where(col != "", np.nan)


def load_scores(run: RunDir) -> pd.DataFrame:
    """The comparisons of a run in the protocol's pair order, one row per pair.

    Raises RunDirError when a table is malformed (see :func:`read_records`), when the pair
    list differs from the one whose digest the manifest records, when a pair has no score
    or more than one row, when a row names a pair the protocol does not have, when a status
    is unknown, or when a comparison with status ok has no finite score.
    """
    manifest = run.read_manifest()
    _check_dataset_digest(run, manifest)
    pairs = read_records(run.pairs, PAIR_FIELDS)
    _check_values(run.pairs, pairs, "genuine", ("0", "1"))
    recorded = (manifest.get("protocol") or {}).get("pairs_sha256")
    if recorded is not None and _pairs_digest(pairs) != recorded:
        raise RunDirError(f"{run.pairs}: its SHA-256 differs from the pairs_sha256 in {run.manifest.name} "
                          f"(pairs were added, dropped, swapped or relabelled after the run)")
    pairs["genuine"] = pairs["genuine"].astype(np.int64)

    scores = read_records(run.scores, SCORE_FIELDS)
    _check_values(run.scores, scores, "status", COMPARISON_STATUSES)
    _check_values(run.scores, scores, "genuine", ("0", "1"))
    value = pd.to_numeric(scores["score"].where(scores["score"] != "", np.nan), errors="coerce").to_numpy(float)
    bad = (scores["status"] == COMPARISON_OK).to_numpy() & ~np.isfinite(value)
    if bad.any():
        i = _line(scores, bad)
        raise RunDirError(f"{run.scores}, line {i}: {int(bad.sum())} rows with status 'ok' have no numeric score "
                          f"or an infinite one (first: {scores['score'].iloc[i - 2]!r})")
    dup = scores.duplicated(["probe", "reference"], keep=False).to_numpy()
    if dup.any():
        first = scores[dup].iloc[0]
        lines = [int(k) + 2 for k in np.flatnonzero(dup & (scores["probe"] == first["probe"]).to_numpy()
                                                    & (scores["reference"] == first["reference"]).to_numpy())]
        raise RunDirError(f"{run.scores}: {int(dup.sum())} rows repeat a pair (first: {first['probe']} vs "
                          f"{first['reference']} on lines {lines}); was the folder written by two runs at once? "
                          f"Run it again with --force to recompute it")
    scores["genuine"] = scores["genuine"].astype(np.int64)
    scores["score"] = value
    scores["seconds"] = pd.to_numeric(scores["seconds"], errors="coerce")
    for col in ("probe_subject", "reference_subject", "error"):
        scores[col] = _nan_if_empty(scores[col])
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


def load_quality(run: RunDir, manifest: dict[str, Any], samples: Iterable[str]) -> pd.DataFrame | None:
    """The per-image quality of a run (columns of ``quality.csv``, ``quality`` as float, NaN
    where an image has none), indexed by sample; None when the run assessed none.

    Raises RunDirError naming the file and line when the table and the manifest disagree
    (a table without a quality plugin in the manifest, or the reverse), a row is malformed,
    a status unknown, a sample repeated or not in the run, an ok quality not a finite
    number within the plugin's declared range, or a sample of ``samples`` has no row.
    """
    desc = manifest.get("quality")
    if desc is None:
        if run.quality.exists():
            raise RunDirError(f"{run.quality}: the run has a quality table but {run.manifest.name} names no quality "
                              f"plugin (edited by hand?)")
        return None
    if not isinstance(desc, dict) or "name" not in desc or not isinstance(desc.get("score_range"), list) \
            or len(desc["score_range"]) != 2:
        raise RunDirError(f"{run.manifest}: 'quality' must name the plugin and its score_range (edited by hand?)")
    lo, hi = (float(v) for v in desc["score_range"])
    df = read_records(run.quality, QUALITY_FIELDS)
    _check_values(run.quality, df, "status", QUALITY_STATUSES)
    dup = df.duplicated("sample", keep=False).to_numpy()
    if dup.any():
        raise RunDirError(f"{run.quality}, line {_line(df, dup)}: {int(dup.sum())} rows repeat a sample "
                          f"(first: {df.loc[dup, 'sample'].iloc[0]}); run it again with --force to recompute it")
    value = pd.to_numeric(df["quality"].where(df["quality"] != "", np.nan), errors="coerce").to_numpy(float)
    ok = (df["status"] == QUALITY_OK).to_numpy()
    bad = ok & ~((value >= lo) & (value <= hi))
    if bad.any():
        i = _line(df, bad)
        raise RunDirError(f"{run.quality}, line {i}: {int(bad.sum())} rows with status 'ok' have no quality within "
                          f"the plugin's range [{lo:g}, {hi:g}] (first: {df['quality'].iloc[i - 2]!r})")
    bad = ~ok & ~np.isnan(value)
    if bad.any():
        raise RunDirError(f"{run.quality}, line {_line(df, bad)}: a failed assessment carries a quality value")
    df["quality"] = value
    df["seconds"] = pd.to_numeric(df["seconds"], errors="coerce")
    df = df.set_index("sample", drop=False)
    wanted = list(dict.fromkeys(samples))
    missing = [sid for sid in wanted if sid not in df.index]
    if missing:
        raise RunDirError(f"{run.quality}: {len(missing)} images of the run have no quality row (first: "
                          f"{missing[0]}); the run is incomplete: run it again to finish it")
    extra = sorted(set(df.index) - set(wanted))
    if extra:
        raise RunDirError(f"{run.quality}: {len(extra)} rows name samples that no pair of the run uses "
                          f"(first: {extra[0]})")
    return df


def quality_part(manifest: dict[str, Any], quality: pd.DataFrame, df: pd.DataFrame,
                 effective: np.ndarray) -> dict[str, Any]:
    """The ``quality`` section of a run's summary (see :mod:`bench.metrics.quality`)."""
    desc = manifest["quality"]
    edges = Q.default_band_edges(desc["score_range"])
    ok = quality["status"] == QUALITY_OK
    q = quality["quality"]
    return {
        "plugin": desc["name"], "version": desc.get("version"), "params": desc.get("params"),
        "score_range": desc["score_range"], "band_edges": edges,
        "images": {"n": int(len(quality)), "n_assessed": int(ok.sum()),
                   "failures_by_status": {k: int(v) for k, v in quality.loc[~ok, "status"].value_counts().items()},
                   "distribution": Q.quality_distribution(q.to_numpy(float), edges),
                   "ms": distribution(quality.loc[ok, "seconds"].to_numpy(float), 1e3)},
        **Q.quality_summary(effective, df["genuine"].to_numpy(bool), df["probe"].map(q).to_numpy(float),
                            df["reference"].map(q).to_numpy(float), edges),
    }


def comparison_status(status: pd.Series) -> np.ndarray:
    """Map stored statuses to the metric module's three kinds: ok, enrol_failed, failed."""
    s = status.fillna("failed").to_numpy(dtype=object)
    out = np.where(s == COMPARISON_OK, "ok", np.where(s == ENROL_FAILED, "enrol_failed", "failed"))
    return out.astype(str)


# ------------------------------------------------------------------------ the summary
class Distribution(TypedDict):
    """Statistics of per-item values (every field but ``n`` None when there is none)."""

    n: int
    total: float | None
    mean: float | None
    median: float | None
    p5: float | None
    p95: float | None
    p99: float | None
    min: float | None
    max: float | None


class Enrolment(TypedDict):
    n_images: int
    n_enrolled: int
    rej_enroll: int                  # failed enrolments (REJ_ENROLL)
    fte_rate: float | None           # rej_enroll / n_images
    failures_by_status: dict[str, int]
    minutiae: Distribution           # per enrolled template
    template_bytes: Distribution


class Speed(TypedDict):
    extraction_ms: Distribution                      # per enrolled image
    comparison_us: Distribution                      # per successful comparison
    comparison_us_by_kind: dict[str, Distribution]   # the same, genuine and impostor apart
    comparisons_per_second_per_core: float | None    # comparisons / their total seconds
    note: str


class RunSummary(TypedDict):
    """The one summary of a run: the content of ``metrics.json``."""

    schema_version: int
    computed: str
    dataset: str
    protocol: str
    extractor: str
    matcher: str
    score_direction: str
    accuracy: dict[str, Any]                 # bench.metrics.compute_metrics
    enrolment: Enrolment
    speed: Speed
    records_sha256: dict[str, str | None]    # the tables it comes from (SUMMARY_INPUTS, quality.csv)
    quality: NotRequired[dict[str, Any]]     # with a quality plugin: quality_part
    sha256: str                              # of its own content (summary_sha256)


#: How the speed figures are defined; written with them into metrics.json.
SPEED_NOTE = (
    "per item, timed inside one worker process (one core) after the plugin's warm-up; "
    "comparisons_per_second_per_core = successful comparisons / their total seconds (1 / mean time); "
    "median and percentiles (p5, p95, p99) describe single items; a batched comparison reports its "
    "batch time divided by its size; comparison_us_by_kind splits the comparisons into genuine and "
    "impostor ones, whose cost can differ (BOZORTH3: about ten times), so that a protocol's mix of pairs "
    "sets its mean time per comparison"
)
#: The record tables a summary is computed from; their digests are stored with it.
SUMMARY_INPUTS = ("pairs.csv", "scores.csv", "extractions.csv")


def distribution(values: ArrayLike, scale: float = 1.0) -> Distribution:
    """``n``, ``total``, ``mean``, ``median``, ``p5``, ``p95``, ``p99``, ``min``, ``max`` of the
    finite values, times ``scale``; every field but ``n`` is None when there is none."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)] * scale
    keys = ("total", "mean", "median", "p5", "p95", "p99", "min", "max")
    if v.size == 0:
        return {"n": 0, **dict.fromkeys(keys)}
    p5, p50, p95, p99 = (float(x) for x in np.percentile(v, [5, 50, 95, 99]))
    return {"n": int(v.size), "total": float(v.sum()), "mean": float(v.mean()), "median": p50,
            "p5": p5, "p95": p95, "p99": p99, "min": float(v.min()), "max": float(v.max())}


def speed_summary(extraction_seconds: ArrayLike, comparison_seconds: ArrayLike, genuine: ArrayLike) -> Speed:
    """The speed of a run from its per-item times in seconds (see :data:`SPEED_NOTE`);
    ``genuine``: per comparison, whether its pair is genuine."""
    every = np.asarray(comparison_seconds, dtype=np.float64)
    finite = np.isfinite(every)
    cmp = every[finite]
    total = float(cmp.sum())
    kind = np.asarray(genuine, dtype=bool).ravel()
    if kind.size != every.size:
        raise ValueError(f"{kind.size} genuine flags for {every.size} comparison times")
    return {
        "extraction_ms": distribution(extraction_seconds, 1e3),
        "comparison_us": distribution(cmp, 1e6),
        "comparison_us_by_kind": {"genuine": distribution(every[finite & kind], 1e6),
                                  "impostor": distribution(every[finite & ~kind], 1e6)},
        "comparisons_per_second_per_core": cmp.size / total if total > 0 else None,
        "note": SPEED_NOTE,
    }


def enrolment_and_speed(run: RunDir, comparisons: pd.DataFrame) -> dict[str, Any]:
    """Failures to enrol, template statistics and speed, from the extraction records and the
    run's comparisons (:func:`load_scores`)."""
    ext = read_records(run.extractions, EXTRACTION_FIELDS)
    _check_values(run.extractions, ext, "status", EXTRACTION_STATUSES)
    ext = ext.drop_duplicates("sample", keep="last")  # a sample extracted again: its last outcome counts
    ok = ext["status"] == EXTRACTION_OK
    scores = comparisons
    cmp_ok = scores["status"] == COMPARISON_OK

    def column(df: pd.DataFrame, rows: pd.Series, name: str) -> np.ndarray:
        return pd.to_numeric(df.loc[rows, name], errors="coerce").to_numpy(float)

    return {
        "enrolment": {
            "n_images": int(len(ext)),
            "n_enrolled": int(ok.sum()),
            "rej_enroll": int((~ok).sum()),
            "fte_rate": float((~ok).mean()) if len(ext) else None,
            "failures_by_status": {k: int(v) for k, v in ext.loc[~ok, "status"].value_counts().items()},
            "minutiae": distribution(column(ext, ok, "n_minutiae")),
            "template_bytes": distribution(column(ext, ok, "template_bytes")),
        },
        "speed": speed_summary(column(ext, ok, "seconds"), column(scores, cmp_ok, "seconds"),
                               scores.loc[cmp_ok, "genuine"].to_numpy() == 1),
    }


def _file_sha256(path: Path) -> str | None:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except FileNotFoundError:
        return None
    return h.hexdigest()


def records_sha256(run: RunDir) -> dict[str, str | None]:
    """Digests of the record tables a summary is computed from (``quality.csv`` too, when there is one)."""
    names = SUMMARY_INPUTS + (("quality.csv",) if run.quality.exists() else ())
    return {name: _file_sha256(run.path / name) for name in names}


def summary_sha256(summary: dict[str, Any]) -> str:
    """Digest of a summary's content, its own ``sha256`` field left out."""
    body = {k: v for k, v in summary.items() if k != "sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def evaluate_run(path: Path, write: bool = True, *,
                 fmr_targets: Iterable[float] = M.FVC_FMR_TARGETS) -> RunSummary:
    """The one summary of a run (accuracy, failures, speed), from its stored records.

    Written to the run's ``metrics.json`` (unless ``write`` is False) with the digests of the
    records it comes from and of its own content, so that readers (``fingerbench report``,
    ``fingerbench compare``) use it as it is and notice when it is stale or edited; see
    :func:`load_summary`. ``fmr_targets``: FMR targets under ``accuracy.fnmr_at_fmr``.
    An identification run's summary is :func:`evaluate_identification_run`'s.
    """
    if is_identification_run(Path(path)):
        return cast(RunSummary, evaluate_identification_run(Path(path), write))
    run = RunDir(Path(path))
    run.check_complete()
    manifest = run.read_manifest()
    for part in ("dataset", "protocol", "extractor", "matcher"):
        if not isinstance(manifest.get(part), dict) or "name" not in manifest[part]:
            raise RunDirError(f"{run.manifest}: '{part}.name' is missing (the manifest is incomplete or was "
                              f"edited by hand)")
    inputs = records_sha256(run)
    df = load_scores(run)
    higher = bool(manifest.get("matcher", {}).get("higher_is_better", True))
    raw = pd.to_numeric(df["score"], errors="coerce").to_numpy(float)
    scores = M.as_similarity(raw, higher)
    genuine = df["genuine"].astype(int).to_numpy().astype(bool)
    status = comparison_status(df["status"])
    result: dict[str, Any] = {
        "schema_version": manifest["schema_version"],
        "computed": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "dataset": manifest["dataset"]["name"],
        "protocol": manifest["protocol"]["name"],
        "extractor": manifest["extractor"]["name"],
        "matcher": manifest["matcher"]["name"],
        "score_direction": "higher is more similar" if higher else "lower is more similar (negated for metrics)",
        "accuracy": M.compute_metrics(scores, genuine, status, fmr_targets=fmr_targets),
        **enrolment_and_speed(run, df),
        "records_sha256": inputs,
    }
    quality = load_quality(run, manifest, pd.concat([df["probe"], df["reference"]]).tolist())
    if quality is not None:
        result["quality"] = quality_part(manifest, quality, df, M.apply_failures(
            np.nan_to_num(scores, nan=0.0), genuine, status))
    if isinstance(manifest.get("speed"), str):  # why a run has no timings (imported scores)
        result["speed"]["note"] = manifest["speed"]
    result["sha256"] = summary_sha256(result)
    if write:
        write_json(run.metrics, result)
    return cast(RunSummary, result)


def load_summary(path: Path, *, fmr_targets: Iterable[float] = ()) -> tuple[RunSummary, list[str]]:
    """The summary of a run as its ``metrics.json`` holds it, and warnings.

    The stored summary is used when its content digest is right and the record tables still
    have the digests it was computed from; otherwise (missing, stale or edited) it is computed
    again from the records (not written) and a warning says why. ``fmr_targets``: FMR targets
    needed under ``accuracy.fnmr_at_fmr`` besides the FVC ones (computed when absent).
    """
    run = RunDir(Path(path))
    targets = tuple(dict.fromkeys((*M.FVC_FMR_TARGETS, *map(float, fmr_targets))))
    warnings: list[str] = []
    stored: Any = None
    if run.metrics.exists():
        try:
            stored = json.loads(run.metrics.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            warnings.append(f"{run.metrics}: unreadable; its numbers are recomputed from the records")
    if isinstance(stored, dict):
        if stored.get("sha256") is None:
            warnings.append(f"{run.metrics}: written by an older version (no digest); its numbers are "
                            f"recomputed from the records ('fingerbench metrics' updates it)")
        elif stored["sha256"] != summary_sha256(stored):
            warnings.append(f"{run.metrics}: its content does not match its digest (stale or edited); "
                            f"its numbers are recomputed from the records")
        elif stored.get("records_sha256") != records_sha256(run):
            warnings.append(f"{run.metrics}: the records changed after it was computed (stale or edited); "
                            f"its numbers are recomputed from the records")
        elif all(M.fmr_target_key(t) in stored["accuracy"]["fnmr_at_fmr"] for t in targets):
            return cast(RunSummary, stored), warnings
        else:
            return evaluate_run(run.path, write=False, fmr_targets=targets), warnings
    elif stored is None and not warnings:
        warnings.append(f"{run.metrics}: missing; the numbers are computed from the records "
                        f"('fingerbench metrics' stores them)")
    return evaluate_run(run.path, write=False, fmr_targets=targets), warnings


# ------------------------------------------------------------------ identification (1:N) runs
#: The records the summary of an identification run is computed from (see
#: :mod:`bench.identification.results`).
SEARCH_INPUTS = ("searches.parquet", "units.csv", "protocol.csv")
_UNIT_COLUMNS = ("comparisons", "gallery_templates", "prepare_seconds", "prepare_cpu_seconds", "matcher_seconds",
                 "matcher_cpu_seconds")
_SEARCH_COLUMNS = ("mated", "enrolled", "mate_score", "mate_rank", "top_score", "n_compared", "n_failed",
                   "search_seconds", "search_cpu_seconds")


def search_arrays(manifest: dict[str, Any], table: dict[str, np.ndarray]
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per search of a searches table: mated, mate score (-inf when not found), mate rank
    (0 = not within the candidates), top score."""
    mated = np.asarray(table["mated"], dtype=bool)
    ms = np.asarray(table["mate_score"], dtype=np.float64)
    ms = np.where(mated & ~np.isnan(ms), ms, -np.inf)
    return mated, ms, np.asarray(table["mate_rank"], dtype=np.int64), np.asarray(table["top_score"], dtype=np.float64)


def check_recorded_digests(run: Path, manifest: dict[str, Any]) -> None:
    """The digests an identification run's manifest records must match what its folder holds.

    ``key`` is the digest of the run's identity (protocol, templates, matcher, search) and
    ``protocol.sha256`` that of protocol.csv; a mismatch means one of them was edited.
    """
    from bench.protocols.identification import from_csv
    from bench.protocols import ProtocolError
    from bench.store import identity_digest

    identity = {k: manifest.get(k) for k in ("protocol", "templates", "matcher", "search")}
    if manifest.get("key") is not None and identity_digest(identity) != manifest["key"]:
        raise RunDirError(f"{run / 'manifest.json'}: 'key' is not the digest of the recorded protocol, templates, "
                          f"matcher and search settings (the manifest was edited)")
    recorded = (manifest.get("protocol") or {}).get("sha256")
    if recorded is None:
        return
    path = run / "protocol.csv"
    try:
        now = from_csv(path, bool(manifest["protocol"].get("allow_probe_in_gallery", False))).digest()
    except (OSError, ProtocolError) as exc:
        raise RunDirError(f"{path}: cannot be read ({exc})") from exc
    if now != recorded:
        raise RunDirError(f"{path}: its SHA-256 differs from protocol.sha256 in manifest.json (gallery or probe "
                          f"entries were added, dropped or changed after the run)")


def _read_searches(run: Path) -> dict[str, np.ndarray]:
    from bench.identification.results import read_table

    table = read_table(run / "searches")
    missing = [c for c in _SEARCH_COLUMNS if c not in table]
    if missing:
        raise RunDirError(f"{run / 'searches.parquet'}: missing columns {missing}")
    return table


def _read_units(run: Path) -> pd.DataFrame:
    path = run / "units.csv"
    try:
        df = pd.read_csv(path)
    except FileNotFoundError:
        raise RunDirError(f"{path}: missing (the run has not finished)") from None
    except (OSError, ValueError) as exc:
        raise RunDirError(f"{path}: cannot be read ({exc})") from exc
    missing = [c for c in _UNIT_COLUMNS if c not in df.columns]
    if missing:
        raise RunDirError(f"{path}: missing columns {missing}")
    for c in _UNIT_COLUMNS:
        values = pd.to_numeric(df[c], errors="coerce")
        bad = ~np.isfinite(values.to_numpy(float)) | (values.to_numpy(float) < 0)
        if bad.any():
            raise RunDirError(f"{path}, line {int(np.flatnonzero(bad)[0]) + 2}: {c} is not a non-negative number")
        df[c] = values
    return df


def search_speed(table: dict[str, np.ndarray], units: pd.DataFrame) -> dict[str, Any]:
    """Speed of an identification run from its records: per search (time inside the matcher's
    comparison calls, all shards, one thread) and per comparison; the gallery preparation
    (the matcher's ``prepare``) apart, per template and preparation."""
    enrolled = np.asarray(table["enrolled"], dtype=bool)
    wall = np.asarray(table["search_seconds"], dtype=np.float64)[enrolled]
    cpu = np.asarray(table["search_cpu_seconds"], dtype=np.float64)[enrolled]
    comparisons = float(units["comparisons"].sum())
    prepared = float(units["gallery_templates"].sum())

    def rate(n: float, seconds: float) -> float | None:
        return n / seconds if seconds > 0 else None

    return {
        "median_search_seconds": float(np.median(wall)) if wall.size else None,
        "mean_search_seconds": float(wall.mean()) if wall.size else None,
        "p95_search_seconds": float(np.percentile(wall, 95)) if wall.size else None,
        "median_search_cpu_seconds": float(np.median(cpu)) if cpu.size else None,
        "searches_per_second_per_core": rate(wall.size, float(wall.sum())),
        "searches_per_cpu_second": rate(cpu.size, float(cpu.sum())),
        "comparisons_per_second_per_core": rate(comparisons, float(units["matcher_seconds"].sum())),
        "comparisons_per_cpu_second": rate(comparisons, float(units["matcher_cpu_seconds"].sum())),
        "gallery_prepare_seconds_per_template": (float(units["prepare_seconds"].sum()) / prepared
                                                 if prepared else None),
        "gallery_prepare_cpu_seconds_per_template": (float(units["prepare_cpu_seconds"].sum()) / prepared
                                                     if prepared else None),
        "note": "inside the matcher's comparison calls, per search, in single-threaded workers; wall-clock "
                "includes waiting for a core on a loaded machine, CPU does not; the gallery preparation (the "
                "matcher's prepare()) is counted apart, per template each time a unit prepares it",
    }


def _identification_inputs(run: Path) -> dict[str, str | None]:
    return {name: _file_sha256(run / name) for name in SEARCH_INPUTS}


def evaluate_identification_run(path: Path, write: bool = True, *,
                                fpir_targets: Iterable[float] = DEFAULT_FPIR_TARGETS) -> dict[str, Any]:
    """The one summary of an identification run (accuracy, failures, speed) from its stored
    records, written to ``metrics.json`` (unless ``write`` is False) with the digests of the
    records and of its own content, as :func:`evaluate_run` does for a 1:1 run."""
    from bench.store import IDENTIFICATION, read_run_manifest

    run = Path(path)
    manifest = read_run_manifest(run, IDENTIFICATION)
    check_recorded_digests(run, manifest)
    inputs = _identification_inputs(run)
    table = _read_searches(run)
    mated, ms, mr, ts = search_arrays(manifest, table)
    n_gallery = int(manifest["protocol"]["n_gallery_templates"])
    n_compared = np.asarray(table["n_compared"])
    result = compute_identification_metrics(
        mated, ms, mr, ts, int(manifest["search"]["candidates"]),
        n_compared=None if (n_compared < 0).any() else n_compared,  # negative: unknown (imported lists)
        gallery_size=n_gallery, enrolled=np.asarray(table["enrolled"], dtype=bool),
        fpir_targets=tuple(fpir_targets))
    result["n_failed_comparisons"] = int(np.asarray(table["n_failed"]).sum())
    result["gallery_templates"] = n_gallery
    result["gallery_subjects"] = int(manifest["protocol"]["n_gallery_subjects"])
    if isinstance(manifest.get("speed"), str):  # why a run has no timings (imported candidate lists)
        result["speed"] = {"note": manifest["speed"]}
    else:
        result["speed"] = search_speed(table, _read_units(run))
    result["records_sha256"] = inputs
    result["sha256"] = summary_sha256(result)
    if write:
        write_json(run / "metrics.json", result)
    return result


def load_identification_summary(path: Path) -> tuple[dict[str, Any], list[str]]:
    """The summary of an identification run as its ``metrics.json`` holds it, and warnings;
    computed again from the records (not written) when it is missing, stale or edited."""
    run = Path(path)
    mp = run / "metrics.json"
    warnings: list[str] = []
    stored: Any = None
    if mp.exists():
        try:
            stored = json.loads(mp.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            warnings.append(f"{mp}: unreadable; its numbers are recomputed from the records")
    if isinstance(stored, dict):
        if stored.get("sha256") is None or stored["sha256"] != summary_sha256(stored):
            warnings.append(f"{mp}: its content does not match its digest (stale or edited); its numbers are "
                            f"recomputed from the records")
        elif stored.get("records_sha256") != _identification_inputs(run):
            warnings.append(f"{mp}: the records changed after it was computed (stale or edited); its numbers "
                            f"are recomputed from the records")
        else:
            return stored, warnings
    elif stored is None and not warnings:
        warnings.append(f"{mp}: missing; the numbers are computed from the records ('fingerbench metrics' "
                        f"stores them)")
    return evaluate_identification_run(run, write=False), warnings
