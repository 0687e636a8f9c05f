"""External scores as an ordinary 1:1 run directory (``fingerbench import``).

Scores produced outside FingerBench (a closed SDK, another harness, a published score
matrix) are turned into the run directory that :mod:`bench.store` describes, so that
``fingerbench metrics``, ``report`` and ``compare`` treat them like any run. Formats read:

* ``pairs``  -- a pair table, CSV or Parquet, with columns ``probe``, ``reference``,
  ``score`` and optionally ``genuine`` (0/1/true/false), ``probe_subject`` and
  ``reference_subject``; other names can be mapped (``columns``).
* ``bob4`` / ``bob5`` -- the score files of bob.bio: whitespace-separated lines
  ``claimed_id real_id test_label score`` (the reference is the model of ``claimed_id``) or
  ``claimed_id model_label real_id test_label score``; empty lines and ``#`` comments are
  skipped; genuine when ``claimed_id == real_id``.
* ``matrix`` -- a CSV whose first row names the references and first column the probes
  (``rows="reference"`` swaps them); an empty cell is a comparison the file does not have.

The pairs of the run are the file's own (protocol ``listed``; every non-empty off-diagonal
cell of a matrix with ``cells``), or those of a protocol picked out of the file (``fvc``,
``all-pairs``, or a pair-list CSV), each of which the file must hold; with ``symmetric`` a
pair may be found the other way round. Subjects (and so genuine and impostor) come from,
in this order: a ``subjects`` table, the dataset's images when its folder is given, the
subjects the file states (bob files, subject columns), the sample names (``naming``: FVC's
``<finger>_<impression>`` by default, or a regular expression with a group ``subject``),
or, last, the groups of samples joined by the file's genuine pairs. A genuine flag the file
states must agree with the subjects.

The run records no extraction and no timing: every template counts as enrolled, and the
speed is unknown (empty times, shown as n/a, never as zero). The manifest names the file,
its SHA-256 and format, and marks the extractor and matcher as external.

1:N candidate lists (format ``candidates``, :func:`import_candidates`): a table, CSV or
Parquet, of ``probe``, ``candidate`` (a gallery template or subject; ``reference`` is read
as ``candidate``), ``score`` and optionally ``rank``, with the gallery and probes from a
protocol CSV (``role,id,subject[,mated]``, as ``fingerbench identify --export-protocol``
writes it) or from the dataset's images. They become an identification run directory (the
layout of :mod:`bench.identification.runner`: manifest, protocol.csv, searches and
candidates tables, metrics.json) that ``fingerbench metrics`` and ``report`` read like one
``fingerbench identify`` made: CMC, FNIR at FPIR; penetration and speed unknown.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from bench.store import (
    EXTRACTION_FIELDS, IDENTIFICATION, SCORE_FIELDS, VERIFICATION, CsvLog, claim, manifest_header, write_json,
)

log = logging.getLogger(__name__)

FORMATS = ("pairs", "bob4", "bob5", "matrix", "candidates")
#: The format of 1:N candidate lists (every other format holds 1:1 comparisons).
CANDIDATES = "candidates"
#: Protocols that use the file's own pairs rather than picking pairs out of it.
LISTED, CELLS = "listed", "cells"
#: FVC sample names: ``<finger>_<impression>`` (e.g. ``101_3``).
FVC_NAMING = r"^(?P<subject>\d+)_(?P<impression>\d+)$"
NAMINGS = {"fvc": FVC_NAMING}
#: Columns of a pair table (``probe``, ``reference`` and ``score`` are required).
PAIR_COLUMNS = ("probe", "reference", "score", "genuine", "probe_subject", "reference_subject")
#: Columns of a candidate-list table (``probe``, ``candidate`` and ``score`` are required;
#: without a ``candidate`` column, ``reference`` is read as the candidate).
CANDIDATE_COLUMNS = ("probe", "candidate", "score", "rank")
#: What the manifest and metrics say about the speed of an imported run.
SPEED_UNKNOWN = "unknown: the scores were imported from outside FingerBench, which timed nothing"
_TRUE, _FALSE = ("1", "true", "yes"), ("0", "false", "no")


class ScoreImportError(ValueError):
    """A score file that cannot be imported as it is; the message names the file and line."""


# ----------------------------------------------------------------------------- reading
@dataclass
class Comparison:
    """One score of the file, with where it was found (``line``: line or row of the file)."""

    probe: str
    reference: str
    score: float
    text: str                       # the score as stored (kept so that no digit is lost)
    line: int
    genuine: bool | None = None     # as the file states it, if it does
    probe_subject: str | None = None
    reference_subject: str | None = None


@dataclass
class ScoreFile:
    """What a score file holds: its comparisons by (probe, reference), in file order."""

    path: Path
    format: str
    comparisons: dict[tuple[str, str], Comparison] = field(default_factory=dict)
    rows: list[str] = field(default_factory=list)      # a matrix's row and column names
    columns: list[str] = field(default_factory=list)
    where: str = "line"                                 # "line" (text files) or "row" (Parquet)

    def add(self, c: Comparison) -> None:
        key = (c.probe, c.reference)
        if key in self.comparisons:
            raise ScoreImportError(f"{self.path}, {self.where} {c.line}: the pair {c.probe} vs {c.reference} "
                                   f"again (first on {self.where} {self.comparisons[key].line}); a pair may have "
                                   f"one score only")
        self.comparisons[key] = c

    def samples(self) -> list[str]:
        names = dict.fromkeys(self.rows + self.columns)
        for p, r in self.comparisons:
            names.setdefault(p)
            names.setdefault(r)
        return list(names)


def _number(path: Path, where: str, line: int, text: str, what: str = "score") -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ScoreImportError(f"{path}, {where} {line}: {what} {text!r} is not a finite number")
    return value


def _flag(path: Path, where: str, line: int, text: str) -> bool | None:
    t = text.strip().lower()
    if t == "":
        return None
    if t in _TRUE or t in _FALSE:
        return t in _TRUE
    raise ScoreImportError(f"{path}, {where} {line}: genuine must be 0/1/true/false, got {text!r}")


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ScoreImportError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ScoreImportError(f"{path}, line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); "
                               f"save the file as UTF-8") from None


def _csv_rows(path: Path, text: str) -> Iterable[tuple[int, list[str]]]:
    """(line number, cells) of each non-empty CSV line; comma- or tab-separated (from the header)."""
    first = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first and "," not in first else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ScoreImportError(f"{path}, line {reader.line_num}: not valid CSV ({exc})") from None
        if any(cell.strip() for cell in row):
            yield reader.line_num, [cell.strip() for cell in row]


def _refuse_unless_forced(path: Path, force: bool) -> None:
    """An import does not replace a run unless told to."""
    if not force:
        raise ScoreImportError(f"{path}: holds a run already; choose another --out or pass --force to replace it")


def _table_rows(path: Path, expected: str) -> tuple[list[str], Iterable[tuple[int, list[str]]], str]:
    """The header, the numbered rows and what a row is called ("line", or "row" in Parquet)
    of a CSV or Parquet table (by the ``.parquet`` / ``.pq`` suffix); ``expected`` names the
    header an empty CSV file lacks."""
    if path.suffix.lower() in (".parquet", ".pq"):
        return _parquet_rows(path)
    lines = iter(_csv_rows(path, _read_text(path)))
    first = next(lines, None)
    if first is None:
        raise ScoreImportError(f"{path}: empty (expected a header line with {expected})")
    return first[1], lines, "line"


def read_pair_table(path: Path, columns: dict[str, str] | None = None) -> ScoreFile:
    """A pair table (CSV, or Parquet by the ``.parquet`` / ``.pq`` suffix)."""
    path = Path(path)
    wanted = {k: (columns or {}).get(k, k) for k in PAIR_COLUMNS}
    header, rows, where = _table_rows(path, "probe,reference,score[,genuine]")
    index = {h.strip().lower(): i for i, h in enumerate(header)}
    found = {k: index.get(name.strip().lower()) for k, name in wanted.items()}
    missing = [wanted[k] for k in ("probe", "reference", "score") if found[k] is None]
    if missing:
        raise ScoreImportError(
            f"{path}: no column {', '.join(repr(m) for m in missing)} (columns found: "
            f"{', '.join(repr(h) for h in header) or 'none'}); a pair table needs probe, reference, score"
            f"[, genuine] (map other names with --column score=NAME)")
    out = ScoreFile(path, "pairs", where=where)
    n = len(header)
    for line, row in rows:
        if len(row) != n:
            raise ScoreImportError(f"{path}, {where} {line}: {len(row)} fields where the header has {n}")
        cell = {k: (row[i] if i is not None else "") for k, i in found.items()}
        for k in ("probe", "reference", "score"):
            if not cell[k]:
                raise ScoreImportError(f"{path}, {where} {line}: the {wanted[k]} is empty")
        if cell["probe"] == cell["reference"]:
            raise ScoreImportError(f"{path}, {where} {line}: a sample compared with itself ({cell['probe']!r})")
        ps, rs = cell["probe_subject"] or None, cell["reference_subject"] or None
        out.add(Comparison(cell["probe"], cell["reference"], _number(path, where, line, cell["score"]),
                           cell["score"], line, _flag(path, where, line, cell["genuine"]), ps, rs))
    if not out.comparisons:
        raise ScoreImportError(f"{path}: no scores (only a header)")
    return out


def _parquet_rows(path: Path) -> tuple[list[str], Iterable[tuple[int, list[str]]], str]:
    import pandas as pd

    try:
        df = pd.read_parquet(path)
    except ImportError as exc:
        raise ScoreImportError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow): {exc}") from None
    except Exception as exc:  # pyarrow raises its own types for a damaged file
        raise ScoreImportError(f"{path}: not a readable Parquet file ({exc})") from None

    def text(v: Any) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return ""
        if isinstance(v, bool):
            return "1" if v else "0"
        return repr(float(v)) if isinstance(v, float) else str(v).strip()

    header = [str(c) for c in df.columns]
    rows = ((i + 1, [text(v) for v in values]) for i, values in enumerate(df.itertuples(index=False)))
    return header, rows, "row"


def read_bob(path: Path, n_columns: int) -> ScoreFile:
    """A bob.bio score file of 4 (``claimed_id real_id test_label score``) or 5
    (``claimed_id model_label real_id test_label score``) columns."""
    path = Path(path)
    out = ScoreFile(path, f"bob{n_columns}")
    layout = ("claimed_id real_id test_label score" if n_columns == 4
              else "claimed_id model_label real_id test_label score")
    for line, raw in enumerate(_read_text(path).splitlines(), start=1):
        s = raw.strip()
        if not s or s.startswith("#"):
            continue
        f = s.split()
        if len(f) != n_columns:
            other = " (a 5-column file? use --format bob5)" if n_columns == 4 and len(f) == 5 else (
                " (a 4-column file? use --format bob4)" if n_columns == 5 and len(f) == 4 else "")
            raise ScoreImportError(f"{path}, line {line}: {len(f)} fields, expected {n_columns} "
                                   f"({layout}){other}")
        if n_columns == 4:
            claimed, real, probe, score = f
            reference = claimed
        else:
            claimed, reference, real, probe, score = f
        if probe == reference:
            raise ScoreImportError(f"{path}, line {line}: a sample compared with itself ({probe!r})")
        out.add(Comparison(probe, reference, _number(path, "line", line, score), score, line,
                           claimed == real, real, claimed))
    if not out.comparisons:
        raise ScoreImportError(f"{path}: no scores (only empty or comment lines)")
    return out


def read_matrix(path: Path, rows: str = "probe") -> ScoreFile:
    """A score matrix: first row and first column name the samples; empty cells are absent."""
    path = Path(path)
    if rows not in ("probe", "reference"):
        raise ValueError(f"rows must be 'probe' or 'reference', not {rows!r}")
    lines = iter(_csv_rows(path, _read_text(path)))
    first = next(lines, None)
    if first is None:
        raise ScoreImportError(f"{path}: empty (expected a score matrix whose first row names the samples)")
    columns = first[1][1:]
    if not columns or any(not c for c in columns):
        raise ScoreImportError(f"{path}, line 1: the first row must name a sample in every column after the first")
    _no_repeats(path, columns, "column")
    out = ScoreFile(path, "matrix", columns=columns)
    names: list[str] = []
    for line, row in lines:
        if len(row) != len(columns) + 1:
            raise ScoreImportError(f"{path}, line {line}: {len(row)} cells where the first row has "
                                   f"{len(columns) + 1}")
        name = row[0]
        if not name:
            raise ScoreImportError(f"{path}, line {line}: the first cell must name the row's sample")
        names.append(name)
        for col, text in zip(columns, row[1:]):
            if text == "" or col == name:
                continue
            value = _number(path, "line", line, text, f"column {columns.index(col) + 2} ({col}): score")
            p, r = (name, col) if rows == "probe" else (col, name)
            out.add(Comparison(p, r, value, text, line))
    if not names:
        raise ScoreImportError(f"{path}: the matrix has no rows")
    _no_repeats(path, names, "row")
    out.rows = names
    return out


def _no_repeats(path: Path, names: list[str], what: str) -> None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise ScoreImportError(f"{path}: the {what} {n!r} appears twice")
        seen.add(n)


def read_scores(path: Path, fmt: str, *, columns: dict[str, str] | None = None,
                matrix_rows: str = "probe") -> ScoreFile:
    """Read a score file of format ``fmt`` (see :data:`FORMATS`)."""
    path = Path(path)
    if not path.is_file():
        raise ScoreImportError(f"{path}: no such file")
    if fmt == "pairs":
        return read_pair_table(path, columns)
    if fmt in ("bob4", "bob5"):
        return read_bob(path, int(fmt[-1]))
    if fmt == "matrix":
        return read_matrix(path, matrix_rows)
    if fmt == CANDIDATES:
        raise ScoreImportError(f"{path}: 1:N candidate lists are imported by import_candidates, not read as "
                               f"1:1 scores")
    raise ScoreImportError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")


def _names_candidates(header: list[str], columns: dict[str, str] | None) -> bool:
    names = {c.strip().lower() for c in header}
    mapped = (columns or {}).get("candidate")
    return bool({"candidate", "rank"} & names) or (mapped is not None and mapped.lower() in names)


def guess_format(path: Path, columns: dict[str, str] | None = None) -> str:
    """``candidates`` for a table (CSV or Parquet) whose header has a ``candidate`` or ``rank``
    column (or the column mapped to ``candidate``), ``pairs`` for any other Parquet and for a
    CSV whose header names a pair table's column (or one mapped by ``columns``),
    ``bob4``/``bob5`` for whitespace-separated lines of 4 or 5 fields, ``matrix`` for any
    other CSV."""
    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        header, _, _ = _parquet_rows(path)
        return CANDIDATES if _names_candidates(header, columns) else "pairs"
    for _, row in _csv_rows(path, _read_text(path)):
        if len(row) == 1:  # no comma: whitespace-separated
            n = len(row[0].split())
            if row[0].startswith("#"):
                continue
            if n in (4, 5):
                return f"bob{n}"
            break
        if _names_candidates(row, columns):
            return CANDIDATES
        known = {c.lower() for c in (*PAIR_COLUMNS, *(columns or {}).values())}
        return "pairs" if known & {c.lower() for c in row} else "matrix"
    raise ScoreImportError(f"{path}: cannot tell its format; give --format ({', '.join(FORMATS)})")


# ---------------------------------------------------------------------------- subjects
def subjects_from_naming(names: Iterable[str], pattern: str, origin: str) -> dict[str, tuple[str, int]]:
    """(subject, impression) of each name by ``pattern`` (groups ``subject`` and optional
    ``impression``); raises naming the first name it does not match."""
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise ScoreImportError(f"--naming {pattern!r}: not a regular expression ({exc})") from None
    if "subject" not in rx.groupindex:
        raise ScoreImportError(f"--naming {pattern!r}: needs a group named subject, e.g. {FVC_NAMING}")
    out = {}
    for n in names:
        m = rx.search(n)
        if not m:
            raise ScoreImportError(f"{origin}: the sample name {n!r} does not match the naming {pattern!r}; "
                                   f"give --naming REGEX (with a group named subject) or --subjects FILE")
        imp = m.groupdict().get("impression")
        out[n] = (m.group("subject"), int(imp) if imp and imp.isdigit() else 0)
    return out


def read_subjects(path: Path) -> dict[str, str]:
    """A CSV table ``sample,subject``."""
    path = Path(path)
    lines = iter(_csv_rows(path, _read_text(path)))
    first = next(lines, None)
    header = [h.lower() for h in first[1]] if first else []
    if "sample" not in header or "subject" not in header:
        raise ScoreImportError(f"{path}: needs a header with columns sample,subject")
    i, j = header.index("sample"), header.index("subject")
    out: dict[str, str] = {}
    for line, row in lines:
        if len(row) != len(header) or not row[i] or not row[j]:
            raise ScoreImportError(f"{path}, line {line}: expected a sample and its subject")
        if row[i] in out and out[row[i]] != row[j]:
            raise ScoreImportError(f"{path}, line {line}: sample {row[i]!r} given two subjects")
        out[row[i]] = row[j]
    return out


def subjects_from_genuine(sf: ScoreFile) -> dict[str, str]:
    """Subjects as the groups of samples joined by the file's genuine pairs (union-find)."""
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for (p, r), c in sf.comparisons.items():
        root(p), root(r)
        if c.genuine is None:
            raise ScoreImportError(f"{sf.path}, {sf.where} {c.line}: no genuine flag, and no other way to tell "
                                   f"the subjects; give --naming, --subjects or a genuine column on every row")
        if c.genuine:
            parent[root(p)] = root(r)
    return {s: root(s) for s in parent}


# --------------------------------------------------------------------------- the import
@dataclass
class ImportSettings:
    """What ``fingerbench import`` was asked to do (see :func:`import_scores`)."""

    path: Path
    out: Path
    dataset: str
    matcher: str
    higher_is_better: bool
    format: str | None = None            # None: guessed from the file
    protocol: str | None = None          # None: "listed" (pair formats) or "fvc" (matrix)
    extractor: str = "external"
    version: str = "unknown"
    symmetric: bool = False
    naming: str | None = None            # a NAMINGS key or a regular expression
    subjects: Path | None = None         # CSV sample,subject
    columns: dict[str, str] = field(default_factory=dict)
    matrix_rows: str = "probe"
    dataset_path: Path | None = None
    data_root: Path | None = None
    force: bool = False
    candidates: int | None = None        # 1:N: the declared list length L (None: the longest list)


@dataclass
class ImportResult:
    run_dir: Path
    n_pairs: int
    n_unused: int
    metrics: dict[str, Any]


def _dataset_info(name: str):
    from bench.datasets import registry
    from bench.datasets.base import DatasetError, DatasetInfo

    try:
        return registry.registration(name).info, True
    except DatasetError:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
            raise ScoreImportError(f"--dataset {name!r}: neither a registered dataset nor a plain name "
                                   f"(letters, digits, '.', '_', '-')") from None
        return DatasetInfo(name, name, "unknown", 0.0, None, None, None, "", "", "", ("fvc", "all-pairs")), False


def _pairs(sf: ScoreFile, protocol: str, dataset, symmetric: bool):
    """The run's pairs (a PairList) and for each its comparison in the file."""
    from bench import protocols

    if protocol in (LISTED, CELLS):  # every comparison the file holds, in file order
        if protocol == LISTED and sf.format == "matrix":
            raise ScoreImportError(f"{sf.path}: a matrix has no list of pairs; give -p fvc, all-pairs, cells "
                                   f"or a pair-list CSV")
        if protocol == CELLS and sf.format != "matrix":
            raise ScoreImportError(f"-p {CELLS} applies to a matrix; {sf.path} is a {sf.format} file "
                                   f"(use -p {LISTED})")
        chosen = list(sf.comparisons.values())
        pl = protocols.PairList(protocol, [protocols.Pair(c.probe, c.reference, False) for c in chosen],
                                {"file": sf.path.name})
        return pl, chosen
    if sf.format == "matrix" and protocol in protocols.PROTOCOLS and set(sf.rows) != set(sf.columns):
        only_rows = [n for n in sf.rows if n not in set(sf.columns)]
        only_cols = [n for n in sf.columns if n not in set(sf.rows)]
        raise ScoreImportError(
            f"{sf.path}: protocol {protocol} needs a square matrix whose rows and columns name the same "
            f"samples; it has {len(sf.rows)} rows and {len(sf.columns)} columns (only in rows: "
            f"{only_rows[:3]}, only in columns: {only_cols[:3]})")
    pl = protocols.build(protocol, dataset)
    chosen, lacking = [], []
    for p in pl.pairs:
        c = sf.comparisons.get((p.probe, p.reference))
        if c is None and symmetric:
            c = sf.comparisons.get((p.reference, p.probe))
        if c is None:
            lacking.append(p)
        else:
            chosen.append(c)
    if lacking:
        first = ", ".join(f"{p.probe} vs {p.reference}" for p in lacking[:3])
        hint = "" if symmetric else " (--symmetric also accepts a pair stored the other way round)"
        raise ScoreImportError(f"{sf.path}: lacks {len(lacking)} of the {len(pl.pairs)} pairs of protocol "
                               f"{pl.protocol} (first: {first}){hint}")
    return pl, chosen


def _check_complete(path: Path, info, subjects: dict[str, str]) -> None:
    """A protocol built on the file's samples alone would silently shrink with a sample the file
    never names: where the dataset's size is published, the file must name every sample."""
    if not info.fingers or not info.impressions:
        return
    per_subject: dict[str, int] = {}
    for subj in subjects.values():
        per_subject[subj] = per_subject.get(subj, 0) + 1
    short = sorted(f"{k} ({v})" for k, v in per_subject.items() if v != info.impressions)
    if len(per_subject) != info.fingers or short:
        raise ScoreImportError(
            f"{path}: names {len(subjects)} samples of {len(per_subject)} fingers, but {info.name} has "
            f"{info.fingers} fingers x {info.impressions} impressions"
            + (f"; fingers without {info.impressions} impressions: {', '.join(short[:5])}" if short else "")
            + "; a protocol built on the file's samples would leave pairs out (give --dataset-path to check "
              "the names against the images)")


def import_scores(s: ImportSettings) -> ImportResult:
    """Turn a score file into a run directory at ``s.out`` and compute its metrics.json."""
    from bench import provenance
    from bench.datasets import open_dataset
    from bench.datasets.base import Dataset, Sample, sha256_file
    from bench.protocols import Pair, PairList, ProtocolError
    from bench.metrics.summary import evaluate_run

    path = Path(s.path)
    fmt = s.format or guess_format(path, s.columns)
    sf = read_scores(path, fmt, columns=s.columns, matrix_rows=s.matrix_rows)
    protocol = s.protocol or ("fvc" if fmt == "matrix" else LISTED)
    info, registered = _dataset_info(s.dataset)
    names = sf.samples()
    origin = str(path)

    # -- subjects (see the module docstring for the order)
    images: Dataset | None = None
    impressions: dict[str, int] = {}
    if s.dataset_path is not None or s.data_root is not None:
        if not registered:
            raise ScoreImportError(f"--dataset {s.dataset!r} is not a registered dataset, so its images cannot "
                                   f"be opened; leave out --dataset-path/--data-root")
        images = open_dataset(s.dataset, root=s.dataset_path, data_root=s.data_root)
    if s.subjects is not None:
        table = read_subjects(s.subjects)
        unknown = [n for n in names if n not in table]
        if unknown:
            raise ScoreImportError(f"{s.subjects}: no subject for {len(unknown)} samples of {path} "
                                   f"(first: {unknown[:3]})")
        subjects, how = {n: table[n] for n in names}, f"table {Path(s.subjects).name}"
    elif images is not None:
        by_id = {x.id: x for x in images.samples}
        unknown = [n for n in names if n not in by_id]
        if unknown:
            raise ScoreImportError(f"{path}: {len(unknown)} sample names match no image of {images.name} at "
                                   f"{images.root} (first: {unknown[:3]})")
        subjects, how = {n: by_id[n].subject for n in names}, "dataset images"
        impressions = {n: by_id[n].impression for n in names}
    elif s.naming is None and any(c.probe_subject for c in sf.comparisons.values()):
        subjects = {}
        for c in sf.comparisons.values():
            for name, subj in ((c.probe, c.probe_subject), (c.reference, c.reference_subject)):
                if not subj:
                    raise ScoreImportError(f"{path}, {sf.where} {c.line}: the subject of {name!r} is empty")
                if subjects.setdefault(name, subj) != subj:
                    raise ScoreImportError(f"{path}, {sf.where} {c.line}: sample {name!r} has subject {subj!r} "
                                           f"here and {subjects[name]!r} on an earlier line")
        how = "the file"
    else:
        pattern = NAMINGS.get(s.naming or "fvc", s.naming or FVC_NAMING)
        try:
            named = subjects_from_naming(names, pattern, origin)
        except ScoreImportError:
            if s.naming is not None or not any(c.genuine is not None for c in sf.comparisons.values()):
                raise
            named = {n: (subj, 0) for n, subj in subjects_from_genuine(sf).items()}
            how = "genuine pairs"
        else:
            how = f"naming {s.naming or 'fvc'}"
        subjects = {n: v[0] for n, v in named.items()}
        impressions = {n: v[1] for n, v in named.items()}

    # -- a stated genuine flag must agree with the subjects
    for c in sf.comparisons.values():
        if c.genuine is not None and c.genuine != (subjects[c.probe] == subjects[c.reference]):
            raise ScoreImportError(
                f"{path}, {sf.where} {c.line}: {c.probe} vs {c.reference} is marked "
                f"{'genuine' if c.genuine else 'impostor'}, but their subjects ({how}) are "
                f"{subjects[c.probe]!r} and {subjects[c.reference]!r}")

    # -- the pairs
    if images is not None:
        dataset = images
    else:
        if protocol not in (LISTED, CELLS):
            _check_complete(path, info, subjects)
        dataset = Dataset(info, Path("."), [Sample(n, subjects[n], impressions.get(n, 0), None, info.dpi)
                                            for n in names])
    try:
        pl, chosen = _pairs(sf, protocol, dataset, s.symmetric)
    except ProtocolError as exc:
        raise ScoreImportError(f"{path}: protocol {protocol}: {exc}") from None
    pl = PairList(pl.protocol, [Pair(p.probe, p.reference, subjects[p.probe] == subjects[p.reference])
                                for p in pl.pairs], pl.params)
    if not pl.n_genuine or not pl.n_impostor:
        log.warning("%s: the %d pairs hold %d genuine and %d impostor comparisons; most metrics need both",
                    path, len(pl.pairs), pl.n_genuine, pl.n_impostor)
    needed = sorted({p.probe for p in pl.pairs} | {p.reference for p in pl.pairs})

    # -- the run directory
    digest = sha256_file(path)
    files_sha256: dict[str, str] = {}
    if images is not None:
        by_id = {x.id: x for x in images.samples}
        files_sha256 = {n: sha256_file(by_id[n].path) for n in needed
                        if by_id[n].path is not None and by_id[n].path.is_file()}
    dataset_sha = hashlib.sha256("".join(f"{k}:{v}\n" for k, v in sorted(files_sha256.items())).encode()).hexdigest()
    external = {"target": "external", "version": s.version, "params": {}, "code_sha256": "", "external": True}
    manifest = {
        **manifest_header(VERIFICATION),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "status": "complete",
        "dataset": {"name": info.name, "params": {}, "sha256": dataset_sha if images is not None else None,
                    "root": str(images.root) if images is not None else None,
                    "dpi": info.dpi or None, "image_size": info.image_size, "n_samples": len(needed),
                    "n_problems": len(images.problems) if images is not None else 0,
                    **({"files_sha256": files_sha256} if images is not None else {}),
                    "subjects_from": how},
        "protocol": pl.describe(),
        "extractor": {"name": s.extractor, **external, "template_format": "unknown"},
        "matcher": {"name": s.matcher, **external, "higher_is_better": bool(s.higher_is_better),
                    "accepted_formats": [], "hooks": {}},
        "source": {"kind": "imported scores", "file": str(path), "sha256": digest, "bytes": path.stat().st_size,
                   "format": fmt, "comparisons_in_file": len(sf.comparisons), "comparisons_used": len(chosen),
                   "symmetric": s.symmetric, "matrix_rows": s.matrix_rows if fmt == "matrix" else None,
                   "columns": s.columns or None},
        "speed": SPEED_UNKNOWN,
        "environment": provenance.environment(),
        "command": ["fingerbench", "import", str(path)],
    }
    with claim(s.out) as run:
        if run.exists():
            _refuse_unless_forced(run.path, s.force)
            run.remove_own_files()
        write_json(run.manifest, manifest)
        pl.to_csv(run.pairs)
        write_json(run.problems, [p.__dict__ for p in images.problems] if images is not None else [])
        ext = CsvLog(run.extractions, EXTRACTION_FIELDS)
        ext.append({"sample": n, "subject": subjects[n], "impression": impressions.get(n) or "",
                    "file": "", "status": "ok", "error": "", "n_minutiae": "", "template_bytes": "",
                    "seconds": ""} for n in needed)
        scores = CsvLog(run.scores, SCORE_FIELDS)
        scores.append({"probe": p.probe, "reference": p.reference, "probe_subject": subjects[p.probe],
                       "reference_subject": subjects[p.reference], "genuine": int(p.genuine),
                       "score": c.text, "status": "ok", "error": "", "seconds": ""}
                      for p, c in zip(pl.pairs, chosen))
        manifest["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        write_json(run.manifest, manifest)
        metrics = evaluate_run(run.path)
    return ImportResult(Path(s.out), len(pl.pairs), len(sf.comparisons) - len(chosen), dict(metrics))


# ------------------------------------------------------------------- 1:N candidate lists
@dataclass
class Candidate:
    """One row of a candidate list, with where it was found."""

    name: str                       # a gallery template id or a gallery subject
    score: float
    line: int
    rank: int | None = None


@dataclass
class CandidateLists:
    """What a candidate-list file holds: each probe's rows in file order (an empty list for a
    probe named on a row without candidate: its search returned none)."""

    path: Path
    lists: dict[str, list[Candidate]] = field(default_factory=dict)
    first_line: dict[str, int] = field(default_factory=dict)
    where: str = "line"


def read_candidate_lists(path: Path, columns: dict[str, str] | None = None) -> CandidateLists:
    """A candidate-list table (CSV, or Parquet by the ``.parquet`` / ``.pq`` suffix): one row
    per candidate; a row with a probe and nothing else is a search that returned none."""
    path = Path(path)
    wanted = {k: (columns or {}).get(k, k) for k in CANDIDATE_COLUMNS}
    header, rows, where = _table_rows(path, "probe,candidate,score[,rank]")
    index = {h.strip().lower(): i for i, h in enumerate(header)}
    found = {k: index.get(name.strip().lower()) for k, name in wanted.items()}
    if found["candidate"] is None and "candidate" not in (columns or {}):
        found["candidate"] = index.get("reference")
    missing = [wanted[k] for k in ("probe", "candidate", "score") if found[k] is None]
    if missing:
        raise ScoreImportError(
            f"{path}: no column {', '.join(repr(m) for m in missing)} (columns found: "
            f"{', '.join(repr(h) for h in header) or 'none'}); a candidate list needs probe, candidate (or "
            f"reference), score[, rank] (map other names with --column candidate=NAME)")
    out = CandidateLists(path, where=where)
    seen: dict[tuple[str, str], int] = {}
    n = len(header)
    for line, row in rows:
        if len(row) != n:
            raise ScoreImportError(f"{path}, {where} {line}: {len(row)} fields where the header has {n}")
        cell = {k: (row[i] if i is not None else "") for k, i in found.items()}
        probe = cell["probe"]
        if not probe:
            raise ScoreImportError(f"{path}, {where} {line}: the probe is empty")
        rows_of_probe = out.lists.setdefault(probe, [])
        out.first_line.setdefault(probe, line)
        if not (cell["candidate"] or cell["score"] or cell["rank"]):
            continue  # the probe was searched; no candidate came back
        for k in ("candidate", "score"):
            if not cell[k]:
                raise ScoreImportError(f"{path}, {where} {line}: the {wanted[k]} is empty (a search that "
                                       f"returned no candidate is a row with the probe alone)")
        key = (probe, cell["candidate"])
        if key in seen:
            raise ScoreImportError(f"{path}, {where} {line}: candidate {cell['candidate']!r} of probe {probe!r} "
                                   f"again (first on {where} {seen[key]}); a search lists a candidate once")
        seen[key] = line
        rank = None
        if cell["rank"]:
            try:
                rank = int(cell["rank"])
            except ValueError:
                rank = 0
            if rank < 1:
                raise ScoreImportError(f"{path}, {where} {line}: rank {cell['rank']!r} is not a whole number "
                                       f"from 1")
        rows_of_probe.append(Candidate(cell["candidate"], _number(path, where, line, cell["score"]), line, rank))
    if not out.lists:
        raise ScoreImportError(f"{path}: no candidate lists (only a header)")
    return out


def candidate_protocol(s: ImportSettings):
    """(protocol, dataset or None): the gallery and probes of a 1:N import. ``s.protocol`` a
    protocol CSV (``role,id,subject[,mated]``), or None / ``dataset``: built from the dataset's
    images as ``fingerbench identify -d`` builds it by default (impression 1 enrolled, the
    others searched, every finger enrolled)."""
    from bench.datasets import open_dataset
    from bench.protocols import identification as proto
    from bench.protocols import ProtocolError

    try:
        if s.protocol not in (None, "dataset"):
            return proto.from_csv(Path(s.protocol)), None
        if s.dataset_path is None and s.data_root is None:
            raise ScoreImportError(
                f"{s.path}: 1:N candidate lists need the gallery and the probes: give -p PROTOCOL.csv "
                f"(role,id,subject[,mated], as 'fingerbench identify --export-protocol' writes it) or the "
                f"dataset's images (--dataset-path or --data-root)")
        if not _dataset_info(s.dataset)[1]:
            raise ScoreImportError(f"--dataset {s.dataset!r} is not a registered dataset, so its images cannot "
                                   f"be opened; give -p PROTOCOL.csv")
        images = open_dataset(s.dataset, root=s.dataset_path, data_root=s.data_root)
        return proto.from_dataset(images, [1]), images
    except ProtocolError as exc:
        raise ScoreImportError(str(exc)) from None


#: What a 1:N import writes into its run directory; ``--force`` removes these and nothing else.
CANDIDATE_RUN_FILES = ("manifest.json", "protocol.csv", "searches.parquet", "candidates.parquet", "metrics.json")


def _ranked(cl: CandidateLists, probe: str, rows: list[Candidate], sign: float) -> None:
    """Check the ranks a file gives for one probe: on every row or on none, 1..n once each,
    and in the order of the scores (``sign`` turns them into similarities)."""
    given = [r for r in rows if r.rank is not None]
    if not given:
        return
    if len(given) != len(rows):
        row = next(r for r in rows if r.rank is None)
        raise ScoreImportError(f"{cl.path}, {cl.where} {row.line}: no rank, while other candidates of probe "
                               f"{probe!r} have one (give a rank on every row or on none)")
    by_rank = sorted(rows, key=lambda r: r.rank)
    for k, r in enumerate(by_rank, start=1):
        if r.rank != k:
            raise ScoreImportError(f"{cl.path}, {cl.where} {r.line}: rank {r.rank} of probe {probe!r}; its "
                                   f"{len(rows)} candidates must have the ranks 1 to {len(rows)}, once each")
    for a, b in zip(by_rank, by_rank[1:]):
        if sign * b.score > sign * a.score:
            raise ScoreImportError(f"{cl.path}, {cl.where} {b.line}: rank {b.rank} of probe {probe!r} has a "
                                   f"better score ({b.score:g}) than rank {a.rank} ({a.score:g}); ranks must "
                                   f"follow the scores")


def import_candidates(s: ImportSettings, protocol: Any = None, images: Any = None) -> ImportResult:
    """Turn a candidate-list file into an identification run directory at ``s.out`` and
    compute its metrics.json. ``protocol`` (and the dataset it came from): as
    :func:`candidate_protocol` gives them (read from ``s`` when None).

    Candidates are kept per gallery subject, as ``fingerbench identify`` keeps them: a
    subject listed through several of its templates keeps its best score. The mate's rank
    is 1 + the number of other subjects of the list scoring at least as well (ties count
    against the mate), as in a native run. Nothing is written when the file has a fault.
    """
    import numpy as np

    from bench import provenance
    from bench.datasets.base import sha256_file
    from bench.identification import results as res
    from bench.metrics.summary import evaluate_run

    path = Path(s.path)
    if protocol is None:
        protocol, images = candidate_protocol(s)
    cl = read_candidate_lists(path, s.columns)
    where = cl.where
    probe_index = {p: i for i, p in enumerate(protocol.probe_ids)}
    unknown = [p for p in cl.lists if p not in probe_index]
    if unknown:
        gallery = " (a gallery template: probes and gallery are swapped?)" if unknown[0] in set(
            protocol.gallery_ids) else ""
        raise ScoreImportError(f"{path}, {where} {cl.first_line[unknown[0]]}: probe {unknown[0]!r} is not a probe "
                               f"of protocol {protocol.name}{gallery}; {len(unknown)} probe names of the file are "
                               f"unknown (first: {unknown[:3]})")
    absent = [p for p in protocol.probe_ids if p not in cl.lists]
    if absent:
        raise ScoreImportError(f"{path}: no row for {len(absent)} of the {protocol.n_probes} probes of protocol "
                               f"{protocol.name} (first: {absent[:3]}); a search that returned no candidate is a "
                               f"row with the probe alone")
    longest = max(len(rows) for rows in cl.lists.values())
    L = int(s.candidates) if s.candidates else longest
    if L < 1:
        raise ScoreImportError(f"{path}: every candidate list is empty; declare the list length with --candidates")
    for probe, rows in cl.lists.items():
        if len(rows) > L:
            raise ScoreImportError(f"{path}, {where} {rows[L].line}: probe {probe!r} has {len(rows)} candidates, "
                                   f"more than the {L} declared (--candidates)")
    sign = 1.0 if s.higher_is_better else -1.0
    subjects = protocol.subjects
    number = {subj: k for k, subj in enumerate(subjects)}
    template_subject = dict(zip(protocol.gallery_ids, protocol.gallery_subjects))
    P, K = protocol.n_probes, L + 1  # one column more than L: the list is never "full" (see mate_ranks)
    sub = np.full((P, K), -1, dtype=np.int32)
    sc = np.full((P, K), -np.inf)
    merged = 0
    for probe, rows in cl.lists.items():
        _ranked(cl, probe, rows, sign)
        best: dict[int, float] = {}
        for r in rows:
            subj = template_subject.get(r.name, r.name if r.name in number else None)
            if subj is None:
                raise ScoreImportError(f"{path}, {where} {r.line}: candidate {r.name!r} of probe {probe!r} is "
                                       f"neither a gallery template nor a gallery subject of protocol "
                                       f"{protocol.name}")
            k, value = number[subj], sign * r.score
            merged += k in best
            best[k] = max(best.get(k, -np.inf), value)
        i = probe_index[probe]
        for j, (k, value) in enumerate(sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))):
            sub[i, j], sc[i, j] = k, value
    mate = np.array([number.get(subj, -1) for subj in protocol.probe_subjects], dtype=np.int64)
    is_mate = (sub == mate[:, None]) & (mate[:, None] >= 0)
    mate_score = np.where(is_mate, sc, -np.inf).max(axis=1)
    ranks = res.mate_ranks(sub, sc, mate, mate_score, L)
    subjects_arr = np.asarray(subjects, dtype=object)
    probe_arr = np.asarray(protocol.probe_ids, dtype=object)
    listed = sub[:, :L] >= 0
    at, col = np.nonzero(listed)

    images_sha = None
    if images is not None:
        files = {x.id: sha256_file(x.path) for x in images.samples if x.path is not None and x.path.is_file()}
        images_sha = hashlib.sha256("".join(f"{k}:{v}\n" for k, v in sorted(files.items())).encode()).hexdigest()
    external = {"target": "external", "version": s.version, "params": {}, "code_sha256": "", "external": True}
    manifest = {
        **manifest_header(IDENTIFICATION),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "status": "complete",
        "protocol": protocol.describe(),
        "templates": {"imported": {"dataset": s.dataset},
                      **({"dataset": {"name": images.name, "sha256": images_sha, "root": str(images.root)}}
                         if images is not None else {}),
                      "extractor": {"name": s.extractor, **external}},
        "matcher": {"name": s.matcher, **external, "higher_is_better": bool(s.higher_is_better), "hooks": {}},
        "search": {"candidates": L, "shard_size": None, "probe_batch": None},
        "source": {"kind": "imported candidate lists", "file": str(path), "sha256": sha256_file(path),
                   "bytes": path.stat().st_size, "format": CANDIDATES,
                   "candidates_in_file": sum(len(r) for r in cl.lists.values()),
                   "candidates_merged_into_their_subject": merged, "columns": s.columns or None},
        "speed": SPEED_UNKNOWN,
        "penetration": "unknown: the candidate lists do not say how much of the gallery was searched",
        "environment": provenance.environment(),
        "command": ["fingerbench", "import", str(path)],
    }
    with claim(s.out) as run:
        if run.exists():
            _refuse_unless_forced(run.path, s.force)
            for name in CANDIDATE_RUN_FILES:
                (run.path / name).unlink(missing_ok=True)
        run.path.mkdir(parents=True, exist_ok=True)
        protocol.to_csv(run.path / "protocol.csv")
        searches = res.TableWriter(run.path / "searches")
        searches.write({
            "probe": probe_arr, "subject": np.asarray(protocol.probe_subjects, dtype=object), "mated": mate >= 0,
            "enrolled": np.ones(P, dtype=bool), "mate_score": np.where(mate >= 0, mate_score, np.nan),
            "mate_rank": ranks, "top_subject": np.where(sub[:, 0] >= 0, subjects_arr[np.maximum(sub[:, 0], 0)], ""),
            "top_score": sc[:, 0],
            "n_compared": np.full(P, -1, dtype=np.int64),  # unknown: no penetration rate
            "n_failed": np.zeros(P, dtype=np.int64),
            "search_seconds": np.full(P, np.nan), "search_cpu_seconds": np.full(P, np.nan),
        })
        searches.close()
        table = res.TableWriter(run.path / "candidates")
        table.write({"probe": probe_arr[at], "rank": (col + 1).astype(np.int64), "subject": subjects_arr[sub[at, col]],
                     "score": sc[at, col]})
        table.close()
        write_json(run.manifest, manifest)
        metrics = evaluate_run(run.path)
    return ImportResult(Path(s.out), int(listed.sum()), merged, dict(metrics))


__all__ = ["FORMATS", "CANDIDATES", "ImportSettings", "ImportResult", "ScoreImportError", "ScoreFile",
           "import_scores", "import_candidates", "candidate_protocol", "read_scores", "read_candidate_lists",
           "guess_format"]
