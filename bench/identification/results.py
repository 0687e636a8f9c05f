"""Unit results on disk (chunks), and their merge into the run's tables.

Every finished unit is written at once to ``chunks/pBBBBB-gGGGGG.npz`` (numbers only,
atomically), so an interrupted run loses at most the units in flight. The merge reads
the chunks of one probe shard at a time, so its memory depends on the number of probes
and the candidate list length, never on the gallery size. The large tables are Parquet
(typed, compressed, read column by column; pandas reads them with pyarrow, a dependency),
the small ones CSV:

``searches``   one row per probe: probe, subject, mated, enrolled, mate_score, mate_rank
               (0 = not within the L candidates), top_subject, top_score, n_compared,
               n_failed, search_seconds and search_cpu_seconds (wall-clock and CPU time
               inside the plugins' search calls for this probe, all shards: the
               single-thread search latency); in a cascade also index_seconds,
               index_cpu_seconds, index_work, index_candidates, index_failed,
               index_invalid, index_duplicates, index_over_budget (summed over the
               shards) and mate_index_fraction (see :mod:`.cascade`)
``candidates`` the top L candidates of every search: probe, rank, subject, score
``mated_scores`` every mated comparison: probe, gallery template, score
``histogram.csv`` all comparison scores binned (see :func:`.metrics.histogram_keys`):
               bin, low, high, mated, nonmated
``units.csv``  one row per unit: timings, comparisons, worker, peak memory; in a cascade
               also the index's build time, memory and error

Scores are similarities: a distance matcher's scores are negated.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from bench.metrics.identification import histogram_bin_edges
from bench.store import RunDirError, unique_tmp

CHUNK_DIR = "chunks"
_CHUNK = re.compile(r"^p(\d{5})-g(\d{5})\.npz$")
_UNIT_TIMES = ("unit_seconds", "load_seconds", "prepare_seconds", "matcher_seconds", "unit_cpu_seconds",
               "prepare_cpu_seconds", "matcher_cpu_seconds", "process_cpu_seconds")
UNIT_FIELDS = ["probe_shard", "gallery_shard", "probes", "gallery_templates", "comparisons", *_UNIT_TIMES,
               "peak_rss_bytes", "pid", "host"]
#: Per-search columns of a cascade's chunks, summed over the gallery shards.
INDEX_SEARCH_SUMS = ("index_seconds", "index_cpu_seconds", "index_work", "index_candidates", "index_failed",
                     "index_invalid", "index_duplicates", "index_over_budget")
INDEX_UNIT_FIELDS = ["index_build_seconds", "index_build_cpu_seconds", "index_memory_bytes", "index_built",
                     "index_error"]


def chunk_path(run: Path, b: int, g: int) -> Path:
    return Path(run) / CHUNK_DIR / f"p{b:05d}-g{g:05d}.npz"


def save_chunk(run: Path, result: dict[str, Any]) -> Path:
    path = chunk_path(run, int(result["probe_shard"]), int(result["gallery_shard"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = unique_tmp(path).with_suffix(".tmp.npz")  # two executions of one unit never share it
    try:
        np.savez(tmp, **{k: np.asarray(v) for k, v in result.items()})
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_chunk(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: np.array(z[k]) for k in z.files}
    except Exception as exc:
        raise RunDirError(f"{path}: unreadable unit result ({type(exc).__name__}: {exc})") from exc


def finished_units(run: Path) -> set[tuple[int, int]]:
    """Units whose chunk is on disk and readable (a torn file is deleted: recomputed)."""
    done = set()
    d = Path(run) / CHUNK_DIR
    if not d.is_dir():
        return done
    for p in d.iterdir():
        m = _CHUNK.match(p.name)
        if not m:
            if p.name.endswith(".tmp.npz"):
                p.unlink(missing_ok=True)
            continue
        try:
            with np.load(p, allow_pickle=False) as z:
                z["cand_score"]
                z["unit_seconds"]
        except Exception:
            p.unlink(missing_ok=True)
            continue
        done.add((int(m[1]), int(m[2])))
    return done


# ------------------------------------------------------------------ tables
class TableWriter:
    """Appends column batches to one Parquet table (written under a temporary name, renamed
    when closed)."""

    def __init__(self, path_stem: Path) -> None:
        self.path = Path(f"{path_stem}.parquet")
        self.tmp = self.path.with_name(self.path.name + ".tmp")
        self.tmp.unlink(missing_ok=True)
        self._writer = None

    @property
    def empty(self) -> bool:
        return self._writer is None

    def write(self, columns: dict[str, Any]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({k: np.asarray(v) for k, v in columns.items()})
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.tmp, table.schema)
        self._writer.write_table(table)

    def close(self) -> Path:
        if self._writer is not None:
            self._writer.close()
        if self.tmp.exists():
            self.tmp.replace(self.path)
        return self.path


def read_table(path_stem: Path) -> dict[str, np.ndarray]:
    """Read a table written by :class:`TableWriter` (whichever format is there)."""
    import pandas as pd

    path = Path(f"{path_stem}.parquet")
    if not path.exists():
        old = Path(f"{path_stem}.csv")
        if old.exists():
            raise RunDirError(f"{old}: a table of an older FingerBench (CSV); run the identification again "
                              f"(with --force) to write it as Parquet")
        raise RunDirError(f"{path}: missing (the run has not finished)")
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow's errors for damaged files have no common base
        raise RunDirError(f"{path}: not a readable Parquet table ({type(exc).__name__}: {exc})") from exc
    return {c: df[c].to_numpy() for c in df.columns}


# ------------------------------------------------------------------ merge
def merge_top(a_sub: np.ndarray, a_sc: np.ndarray, b_sub: np.ndarray, b_sc: np.ndarray, keep: int) -> tuple[np.ndarray, np.ndarray]:
    """Merge two (P, K) candidate lists into the top ``keep`` by (score desc, subject)."""
    sub = np.concatenate([a_sub, b_sub], axis=1)
    sc = np.concatenate([a_sc, b_sc], axis=1)
    pad = sub < 0
    key_sub = np.where(pad, np.iinfo(np.int64).max, sub.astype(np.int64))
    order = np.lexsort((key_sub, -sc), axis=-1)[:, :keep]
    return np.take_along_axis(sub, order, axis=1), np.take_along_axis(sc, order, axis=1)


def mate_ranks(cand_sub: np.ndarray, cand_sc: np.ndarray, mate_subject: np.ndarray, mate_score: np.ndarray,
               candidates: int) -> np.ndarray:
    """Pessimistic mate rank per search from the merged top ``L + 1`` lists (0 = not
    within the first L, or no mate).

    rank = 1 + number of other subjects with score >= the mate's. It is exact when the
    list holds every subject scoring >= the mate, i.e. when the list is not full or its
    last score is below the mate's; otherwise the rank is at least L + 1.
    """
    P, K = cand_sub.shape
    m = mate_score[:, None]
    others = (cand_sub >= 0) & (cand_sub != mate_subject[:, None]) & (cand_sc >= m)
    count = others.sum(axis=1)
    full = cand_sub[:, K - 1] >= 0
    exact = ~full | (cand_sc[:, K - 1] < mate_score)
    rank = np.where(exact, count + 1, 0)
    rank[(mate_subject < 0) | ~np.isfinite(mate_score) & (mate_score < 0)] = 0
    rank[rank > candidates] = 0
    return rank.astype(np.int64)


def merge_run(
    run: Path,
    probe_bounds: Sequence[tuple[int, int]],
    gallery_bounds: Sequence[tuple[int, int]],
    probe_ids: Sequence[str],
    probe_subjects: Sequence[str],
    probe_mate: np.ndarray,
    probe_enrolled: np.ndarray,
    gallery_ids: Sequence[str],
    subjects: Sequence[str],
    candidates: int,
) -> dict[str, Any]:
    """Merge every chunk into the run's tables; returns totals for the timing summary.

    ``probe_mate``: gallery subject number of each probe's subject (-1 when non-mated);
    ``gallery_ids`` in store order; ``subjects``: gallery subject names by number.
    """
    run = Path(run)
    keep = candidates + 1
    searches = TableWriter(run / "searches")
    cands = TableWriter(run / "candidates")
    mated = TableWriter(run / "mated_scores")
    subjects_arr = np.asarray(subjects, dtype=object)
    gallery_arr = np.asarray(gallery_ids, dtype=object)
    hist = {"nonmated": {}, "mated": {}}
    unit_rows: list[dict[str, Any]] = []
    totals: dict[str, Any] = {"comparisons": 0, "failed_comparisons": 0, **{k: 0.0 for k in _UNIT_TIMES}}
    for b, (plo, phi) in enumerate(probe_bounds):
        P = phi - plo
        sub = np.full((P, keep), -1, dtype=np.int32)
        sc = np.full((P, keep), -np.inf)
        mate_score = np.full(P, -np.inf)
        n_compared = np.zeros(P, dtype=np.int64)
        n_failed = np.zeros(P, dtype=np.int64)
        seconds = np.zeros(P)
        cpu = np.zeros(P)
        index_sums: dict[str, np.ndarray] = {}
        mate_fraction = np.full(P, np.nan)
        for g, (glo, _ghi) in enumerate(gallery_bounds):
            c = load_chunk(chunk_path(run, b, g))
            if c["cand_subject"].shape != (P, keep):
                raise RunDirError(f"{chunk_path(run, b, g)}: holds {c['cand_subject'].shape} candidates, expected "
                                  f"{(P, keep)} (written with other settings? use --force)")
            sub, sc = merge_top(sub, sc, c["cand_subject"], c["cand_score"], keep)
            ms = c["mate_score"]
            has = ~np.isnan(ms)
            mate_score[has] = np.maximum(mate_score[has], ms[has])
            n_compared += c["n_compared"]
            n_failed += c["n_failed"]
            seconds += c["compare_seconds"]
            cpu += c["compare_cpu_seconds"]
            if "index_seconds" in c:
                for k in INDEX_SEARCH_SUMS:
                    index_sums[k] = index_sums.get(k, 0) + c[k]
                there = ~np.isnan(c["mate_index_fraction"])  # the mate's shard
                mate_fraction[there] = c["mate_index_fraction"][there]
            if c["mated_probe"].size:
                mated.write({"probe": np.asarray(probe_ids[plo:phi], dtype=object)[c["mated_probe"]],
                             "gallery_template": gallery_arr[glo + c["mated_entry"]],
                             "score": c["mated_score"]})
            for kind in ("nonmated", "mated"):
                h = hist[kind]
                for k, v in zip(c[f"hist_{kind}_bins"].tolist(), c[f"hist_{kind}_counts"].tolist()):
                    h[k] = h.get(k, 0) + v
            comps = int(c["n_compared"].sum())
            totals["comparisons"] += comps
            totals["failed_comparisons"] += int(c["n_failed"].sum())
            for k in _UNIT_TIMES:
                if k != "process_cpu_seconds":
                    totals[k] += float(c[k])
            unit_rows.append({"probe_shard": b, "gallery_shard": g, "probes": P,
                              "gallery_templates": int(c["gallery_templates"]), "comparisons": comps,
                              **{k: float(c[k]) for k in _UNIT_TIMES},
                              "peak_rss_bytes": int(c["peak_rss_bytes"]), "pid": int(c["pid"]),
                              "host": str(c["host"]),
                              **({k: (str(c[k]) if k == "index_error" else float(c[k])) for k in INDEX_UNIT_FIELDS}
                                 if "index_seconds" in c else {})})
        mate = np.asarray(probe_mate[plo:phi], dtype=np.int64)
        enrolled = np.asarray(probe_enrolled[plo:phi], dtype=bool)
        mate_score[(mate < 0) | ~enrolled] = -np.inf
        ranks = mate_ranks(sub, sc, mate, mate_score, candidates)
        has_top = sub[:, 0] >= 0
        searches.write({
            "probe": np.asarray(probe_ids[plo:phi], dtype=object),
            "subject": np.asarray(probe_subjects[plo:phi], dtype=object),
            "mated": mate >= 0,
            "enrolled": enrolled,
            "mate_score": np.where(mate >= 0, mate_score, np.nan),
            "mate_rank": ranks,
            "top_subject": np.where(has_top, subjects_arr[np.maximum(sub[:, 0], 0)], ""),
            "top_score": sc[:, 0],
            "n_compared": n_compared,
            "n_failed": n_failed,
            "search_seconds": seconds,
            "search_cpu_seconds": cpu,
            **({**index_sums, "mate_index_fraction": np.where(mate >= 0, mate_fraction, np.nan)} if index_sums else {}),
        })
        L = candidates
        listed = sub[:, :L] >= 0
        rows, cols = np.nonzero(listed)
        cands.write({
            "probe": np.asarray(probe_ids[plo:phi], dtype=object)[rows],
            "rank": (cols + 1).astype(np.int64),
            "subject": subjects_arr[sub[rows, cols]],
            "score": sc[rows, cols],
        })
    out = {"searches": searches.close(), "candidates": cands.close()}
    if mated.empty:
        mated.write({"probe": np.empty(0, dtype=object), "gallery_template": np.empty(0, dtype=object),
                     "score": np.empty(0)})
    out["mated_scores"] = mated.close()
    per_worker: dict[tuple[str, int], float] = {}
    for u in unit_rows:
        k = (u["host"], u["pid"])
        per_worker[k] = max(per_worker.get(k, 0.0), u["process_cpu_seconds"])
    totals["worker_process_cpu_seconds"] = float(sum(per_worker.values()))
    _write_histogram(run / "histogram.csv", hist)
    _write_units(run / "units.csv", unit_rows)
    return {"tables": {k: str(v) for k, v in out.items()}, "totals": totals, "units": unit_rows}


def _write_histogram(path: Path, hist: dict[str, dict[int, int]]) -> None:
    keys = np.array(sorted(set(hist["nonmated"]) | set(hist["mated"])), dtype=np.uint32)
    lo, hi = histogram_bin_edges(keys)
    tmp = unique_tmp(path)
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["bin", "low", "high", "mated", "nonmated"])
        for k, a, b in zip(keys.tolist(), lo.tolist(), hi.tolist()):
            w.writerow([k, repr(a), repr(b), hist["mated"].get(k, 0), hist["nonmated"].get(k, 0)])
    tmp.replace(path)


def _write_units(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = unique_tmp(path)
    fields = UNIT_FIELDS + (INDEX_UNIT_FIELDS if rows and "index_built" in rows[0] else [])
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)


def read_units(path: Path) -> list[dict[str, Any]]:
    """The rows of units.csv, numbers as floats (host and index_error as text)."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise RunDirError(f"{path}: cannot be read ({exc})") from exc
    text = ("host", "index_error")
    try:
        return [{k: (v if k in text else float(v)) for k, v in r.items()} for r in rows]
    except (TypeError, ValueError) as exc:
        raise RunDirError(f"{path}: a value is not a number ({exc})") from exc


def iter_histogram(path: Path) -> Iterator[tuple[float, float, int, int]]:
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            yield float(r["low"]), float(r["high"]), int(r["mated"]), int(r["nonmated"])
