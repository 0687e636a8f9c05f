"""The run directory: raw records on disk, in open formats, safe to interrupt.

Layout of a run directory::

    manifest.json     what produced the run (schema version, dataset and file digests,
                      protocol, plugins with versions and parameters, environment)
    pairs.csv         the protocol's pair list (probe, reference, genuine)
    problems.json     what was wrong with the dataset when it was opened
    extractions.csv   one row per image: status, error, minutiae count, seconds
    scores.csv        one row per comparison: ids, subjects, genuine, score, status, seconds
    quality.csv       one row per image when a quality plugin ran: status, error, quality, seconds
    metrics.json      derived from the CSV files; recomputed by ``fingerbench metrics``

Rows are appended and flushed as they are produced. A process killed mid-write can leave
at most one partial line at the end of a CSV file; opening the run drops it, so a restart
recomputes only that item.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import os
import secrets
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

try:
    import fcntl
except ImportError:  # not POSIX: runs are not locked
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

#: The manifest of every run directory starts with these: one schema for both kinds of
#: run (``kind``: :data:`VERIFICATION` for 1:1, :data:`IDENTIFICATION` for 1:N).
RUN_SCHEMA = "fingerbench-run"
SCHEMA_VERSION = 2
VERIFICATION = "verification"
IDENTIFICATION = "identification"

EXTRACTION_FIELDS = [
    "sample", "subject", "impression", "file", "status", "error",
    "n_minutiae", "template_bytes", "seconds",
]
SCORE_FIELDS = [
    "probe", "reference", "probe_subject", "reference_subject", "genuine",
    "score", "status", "error", "seconds",
]

#: Extraction statuses. Anything but "ok" is a failure to enrol (FTE).
EXTRACTION_OK = "ok"
#: Comparison statuses: "ok"; "enrol_failed" (a side has no template: the FVC ghost
#: template rule applies, no matcher call); "failed", "timeout", "crash" (the comparison
#: itself failed: REJ_NGRA / REJ_NIRA).
COMPARISON_OK = "ok"
ENROL_FAILED = "enrol_failed"

#: Every status the runner writes into extractions.csv and scores.csv.
EXTRACTION_STATUSES = (EXTRACTION_OK, "fte", "unreadable", "error", "missing", "timeout", "crash")
COMPARISON_STATUSES = (COMPARISON_OK, ENROL_FAILED, "failed", "timeout", "crash")
PAIR_FIELDS = ["probe", "reference", "genuine"]
QUALITY_FIELDS = ["sample", "file", "status", "error", "quality", "seconds"]
#: Quality statuses: "ok" (a score within the plugin's declared range); "not_applicable"
#: (the algorithm is not defined for the image, e.g. its resolution); the rest are failures
#: to compute a quality ("out_of_range": a value outside the declared range, NaN or an
#: error code).
QUALITY_OK = "ok"
QUALITY_STATUSES = (QUALITY_OK, "not_applicable", "unreadable", "missing", "error", "out_of_range", "timeout", "crash")


class RunDirError(Exception):
    """A run directory is missing, incomplete or inconsistent."""


def unique_tmp(path: Path) -> Path:
    """A temporary name beside ``path`` that no other writer (process or thread) uses."""
    path = Path(path)
    return path.with_name(f"{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


def atomic_write(path: Path, data: bytes | str) -> None:
    """Replace ``path`` with ``data`` in one step: readers see the old or the new file, whole."""
    path = Path(path)
    tmp = unique_tmp(path)
    try:
        if isinstance(data, str):
            tmp.write_text(data)
        else:
            tmp.write_bytes(data)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: Path, data: Any) -> None:
    atomic_write(Path(path), json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError as exc:
        raise RunDirError(f"{path}: missing") from exc
    except json.JSONDecodeError as exc:
        raise RunDirError(f"{path}: not valid JSON ({exc})") from exc


def one_line(text: str, limit: int = 2000) -> str:
    """Make an error message safe for a single CSV cell."""
    text = " | ".join(part.strip() for part in str(text).splitlines() if part.strip())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _repair_tail(path: Path) -> None:
    """Drop a partial last line left by a process killed while writing."""
    if not path.exists():
        return
    size = path.stat().st_size
    if size == 0:
        return
    with open(path, "rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return
        f.seek(0)
        data = f.read()
        f.seek(0)
        f.truncate(data.rfind(b"\n") + 1)


def stable_json(obj: Any) -> str:
    """A canonical JSON text of ``obj`` (sorted keys): what run identities are compared and hashed as."""
    return json.dumps(obj, sort_keys=True, default=str)


def identity_digest(identity: dict[str, Any]) -> str:
    """SHA-256 of a run's identity (the manifest's ``key``)."""
    return hashlib.sha256(stable_json(identity).encode()).hexdigest()


def manifest_header(kind: str) -> dict[str, Any]:
    """The first keys of a run's manifest."""
    return {"schema": RUN_SCHEMA, "schema_version": SCHEMA_VERSION, "kind": kind, "tool": "fingerbench"}


def run_kind(path: Path, manifest: dict[str, Any]) -> str:
    """The kind of run a manifest describes; RunDirError naming the file when it is not a
    manifest of this FingerBench's schema."""
    version = manifest.get("schema_version")
    if manifest.get("schema") != RUN_SCHEMA or version != SCHEMA_VERSION:
        if manifest.get("schema") in (RUN_SCHEMA, "fingerbench-identification", None) and version in (0, 1):
            raise RunDirError(f"{path}: a run of an older FingerBench (schema version {version}); this one reads "
                              f"version {SCHEMA_VERSION}: run the same command with --force to redo it")
        raise RunDirError(f"{path}: schema {manifest.get('schema')!r} version {version!r}, this FingerBench "
                          f"reads {RUN_SCHEMA!r} version {SCHEMA_VERSION}")
    kind = manifest.get("kind")
    if kind not in (VERIFICATION, IDENTIFICATION):
        raise RunDirError(f"{path}: unknown kind of run {kind!r}")
    return kind


def is_identification_run(path: Path) -> bool:
    """Whether the folder holds an identification (1:N) run (False when its manifest is missing
    or unreadable: the 1:1 readers then name what is wrong with the folder)."""
    try:
        return json.loads((Path(path) / "manifest.json").read_text()).get("kind") == IDENTIFICATION
    except (OSError, ValueError, AttributeError):
        return False


def read_run_manifest(run: Path, kind: str) -> dict[str, Any]:
    """The manifest of the run in folder ``run``; RunDirError unless it is a current manifest
    of a run of ``kind``."""
    path = Path(run) / "manifest.json"
    if not path.is_file():
        raise RunDirError(f"{run}: not a run directory (manifest.json is missing)")
    manifest = read_json(path)
    check_manifest(path, manifest, kind)
    return manifest


def check_manifest(path: Path, manifest: dict[str, Any], kind: str) -> None:
    """RunDirError unless ``manifest`` is a current manifest of a run of ``kind``."""
    found = run_kind(path, manifest)
    if found != kind:
        names = {VERIFICATION: "a verification (1:1) run", IDENTIFICATION: "an identification (1:N) run"}
        raise RunDirError(f"{path}: {names[found]}, not {names[kind]}")


class CsvLog:
    """An append-only CSV file with a fixed header."""

    def __init__(self, path: Path, fields: list[str]) -> None:
        self.path = Path(path)
        self.fields = fields
        _repair_tail(self.path)
        if self.path.exists() and self.path.stat().st_size > 0:
            with open(self.path, newline="") as f:
                header = next(csv.reader(f), None)
            if header != fields:
                raise RunDirError(
                    f"{self.path}: unexpected columns {header}; expected {fields} "
                    f"(written by another version? use --force to recompute)"
                )
        else:
            with open(self.path, "w", newline="") as f:
                csv.writer(f).writerow(fields)

    def rows(self) -> list[dict[str, str]]:
        with open(self.path, newline="") as f:
            return list(csv.DictReader(f))

    def append(self, rows: Iterable[dict[str, Any]]) -> None:
        rows = list(rows)
        if not rows:
            return
        import io

        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=self.fields, extrasaction="raise", lineterminator="\n")
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in self.fields})
        with open(self.path, "a", newline="") as f:
            f.write(buf.getvalue())
            f.flush()


#: Name of the lock file a run holds in its folder while it writes there.
LOCK_NAME = ".fingerbench.lock"


class RunDir:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    #: The files a run writes; ``--force`` removes these and nothing else.
    OWN_FILES = ("manifest.json", "pairs.csv", "problems.json", "extractions.csv", "scores.csv", "quality.csv",
                 "metrics.json")

    manifest = property(lambda self: self.path / "manifest.json")
    pairs = property(lambda self: self.path / "pairs.csv")
    problems = property(lambda self: self.path / "problems.json")
    extractions = property(lambda self: self.path / "extractions.csv")
    scores = property(lambda self: self.path / "scores.csv")
    quality = property(lambda self: self.path / "quality.csv")
    metrics = property(lambda self: self.path / "metrics.json")

    def exists(self) -> bool:
        return self.manifest.exists()

    def check_own(self) -> None:
        """Refuse a folder that holds files but is not recognisably a FingerBench run.

        A folder is the engine's own when it is absent or empty, holds only the run lock,
        or has a manifest.json written by FingerBench; anything else may be the user's.
        """
        if not self.path.exists():
            return
        if not self.path.is_dir():
            raise RunDirError(f"{self.path}: exists and is not a folder; choose another --out")
        names = {p.name for p in self.path.iterdir()}
        if names <= {LOCK_NAME}:
            return
        try:
            tool = json.loads(self.manifest.read_text()).get("tool")
        except (OSError, ValueError, AttributeError):
            tool = None
        if tool != "fingerbench":
            raise RunDirError(
                f"{self.path}: holds files but is not a FingerBench run folder (no readable manifest.json "
                f"written by FingerBench); nothing was written or removed there: choose another --out"
            )

    def remove_own_files(self) -> None:
        """Delete the files a run writes (for ``--force``), after :meth:`check_own`."""
        self.check_own()
        for name in self.OWN_FILES:
            (self.path / name).unlink(missing_ok=True)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the folder for this process while it writes there; refuse if another run holds it.

        The lock (``flock`` on :data:`LOCK_NAME`) is released when the block ends or the
        process dies, so a killed run never leaves a stale lock behind.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        f = open(self.path / LOCK_NAME, "a+")
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    f.seek(0)
                    holder = f.read().strip()
                    if not holder:  # the holder has the lock but has not written its name yet
                        time.sleep(0.2)
                        f.seek(0)
                        holder = f.read().strip()
                    holder = holder or "another process"
                    raise RunDirError(
                        f"{self.path}: another FingerBench run is writing to this folder ({holder}); "
                        f"wait for it to finish or choose another --out"
                    ) from None
            f.seek(0)
            f.truncate()
            f.write(f"pid {os.getpid()} since {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n")
            f.flush()
            yield
        finally:
            f.close()

    def read_manifest(self) -> dict[str, Any]:
        m = read_json(self.manifest)
        check_manifest(self.manifest, m, VERIFICATION)
        return m

    def check_complete(self) -> None:
        """Raise RunDirError naming what is missing for metrics to be computed."""
        if not self.path.is_dir():
            raise RunDirError(f"{self.path}: not a directory")
        for p in (self.manifest, self.pairs, self.extractions, self.scores):
            if not p.exists():
                raise RunDirError(f"{self.path}: {p.name} is missing (not a run directory, or the run never started)")


@contextmanager
def claim(path: Path) -> Iterator[RunDir]:
    """Make ``path`` this process's run folder for the block, or refuse.

    Refuses a folder that is not FingerBench's own (:meth:`RunDir.check_own`) before
    anything is written, and one that another run is writing to (:meth:`RunDir.lock`).
    A run refused before it wrote its manifest leaves no folder behind.
    """
    run = RunDir(path)
    run.check_own()
    made = [p for p in (run.path, *run.path.parents) if not p.exists()]
    try:
        with run.lock():
            yield run
    finally:
        if made and not run.manifest.exists():
            (run.path / LOCK_NAME).unlink(missing_ok=True)
            for p in made:
                try:
                    p.rmdir()
                except OSError:
                    break


# ------------------------------------------------------------ record tables
def row_fault(row: dict[str, Any], fields: list[str], statuses: tuple[str, ...]) -> str | None:
    """What is wrong with one stored row, or None; a row of scores.csv also needs a finite ok score."""
    if None in row or any(row.get(k) is None for k in fields):
        return "wrong number of fields (a truncated or damaged row)"
    if row["status"] not in statuses:
        return f"unknown status {row['status']!r}"
    for field, ok_status, what in (("score", COMPARISON_OK, "a comparison"), ("quality", QUALITY_OK, "an image")):
        if field in row and row["status"] == ok_status:
            try:
                finite = math.isfinite(float(row[field]))
            except ValueError:
                finite = False
            if not finite:
                return f"{field} {row[field]!r} of {what} with status ok is not a finite number"
    return None


def sound_rows(log_: CsvLog, statuses: tuple[str, ...]) -> list[dict[str, str]]:
    """The rows of a record table; damaged rows are dropped from the file (and so recomputed)."""
    rows = log_.rows()
    faults = [(i + 2, f) for i, r in enumerate(rows) if (f := row_fault(r, log_.fields, statuses))]
    if not faults:
        return rows
    bad = {line - 2 for line, _ in faults}
    kept = [r for i, r in enumerate(rows) if i not in bad]
    log.warning("%s: %d damaged rows are dropped and recomputed (first: line %d: %s)",
                log_.path, len(faults), faults[0][0], faults[0][1])
    rewrite_log(log_, kept)
    return kept


def rewrite_log(log_: CsvLog, keep: list[dict[str, str]]) -> None:
    """Replace a record table by the rows ``keep`` (atomically)."""
    tmp = unique_tmp(log_.path)
    try:
        fresh = CsvLog(tmp, log_.fields)
        fresh.append(keep)
        tmp.replace(log_.path)
    finally:
        tmp.unlink(missing_ok=True)
