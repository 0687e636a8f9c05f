"""Template stores: a gallery or a probe set in compact shards on disk.

A store is a folder of NPZ shards (no object arrays, so they load with
``allow_pickle=False``) plus ``store.json``. Each shard holds the templates of whole
subjects, in order::

    ids, subjects        fixed-width unicode arrays
    subject_index        int32: gallery subject number (-1 for a probe of no gallery subject)
    status               uint8: 0 template present, 1 failure to enrol (no minutiae)
    offsets              int64 (n + 1): minutiae of template i are minutiae[offsets[i]:offsets[i+1]]
    minutiae             bench.template.MINUTIA_DTYPE, all templates concatenated
    width, height, dpi   image geometry per template
    digest               uint64: hash of minutiae and geometry (finds identical templates)

About 14 bytes per minutia plus 40 per template: a million templates of 35 minutiae take
about 530 MB. Shards are written atomically, so an interrupted build resumes shard by
shard, and any worker that can read the folder can load any shard.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from bench.store import RunDirError, unique_tmp
from bench.template import MINUTIA_DTYPE, Template

STORE_FORMAT = "fingerbench-template-store"
STORE_VERSION = 1
STATUS_OK = 0
STATUS_FAILED = 1
_FIELDS = ("ids", "subjects", "subject_index", "status", "offsets", "minutiae", "width", "height", "dpi", "digest")


def template_digest(t: Template) -> int:
    """64-bit content hash of a template's minutiae and geometry."""
    h = hashlib.blake2b(digest_size=8)
    h.update(np.ascontiguousarray(t.minutiae).tobytes())
    h.update(np.array([t.width, t.height], dtype=np.int64).tobytes())
    h.update(np.array([t.dpi], dtype=np.float64).tobytes())
    return int.from_bytes(h.digest(), "little")


@dataclass
class Shard:
    """One shard in memory (the compact form: flat minutiae, no Template objects)."""

    ids: np.ndarray
    subjects: np.ndarray
    subject_index: np.ndarray
    status: np.ndarray
    offsets: np.ndarray
    minutiae: np.ndarray
    width: np.ndarray
    height: np.ndarray
    dpi: np.ndarray
    digest: np.ndarray

    def __len__(self) -> int:
        return int(self.ids.size)

    @property
    def nbytes(self) -> int:
        return int(sum(getattr(self, f).nbytes for f in _FIELDS))

    def template(self, i: int) -> Template | None:
        """Template ``i`` (None after a failure to enrol)."""
        if self.status[i] != STATUS_OK:
            return None
        m = self.minutiae[self.offsets[i]: self.offsets[i + 1]]
        return Template(np.array(m), int(self.width[i]), int(self.height[i]), float(self.dpi[i]))

    def templates(self) -> list[Template | None]:
        return [self.template(i) for i in range(len(self))]

    @classmethod
    def build(cls, ids: Sequence[str], subjects: Sequence[str], subject_index: Sequence[int],
              templates: Sequence[Template | None]) -> "Shard":
        n = len(ids)
        if not (len(subjects) == len(subject_index) == len(templates) == n):
            raise ValueError("ids, subjects, subject_index and templates must have the same length")
        counts = np.array([0 if t is None else len(t) for t in templates], dtype=np.int64)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        minutiae = np.zeros(int(offsets[-1]), dtype=MINUTIA_DTYPE)
        for i, t in enumerate(templates):
            if t is not None:
                minutiae[offsets[i]: offsets[i + 1]] = t.minutiae
        return cls(
            ids=np.asarray(ids, dtype=str),
            subjects=np.asarray(subjects, dtype=str),
            subject_index=np.asarray(subject_index, dtype=np.int32),
            status=np.array([STATUS_FAILED if t is None else STATUS_OK for t in templates], dtype=np.uint8),
            offsets=offsets,
            minutiae=minutiae,
            width=np.array([0 if t is None else t.width for t in templates], dtype=np.int32),
            height=np.array([0 if t is None else t.height for t in templates], dtype=np.int32),
            dpi=np.array([0 if t is None else t.dpi for t in templates], dtype=np.float32),
            digest=np.array([0 if t is None else template_digest(t) for t in templates], dtype=np.uint64),
        )

    def save(self, path: Path) -> None:
        path = Path(path)
        tmp = unique_tmp(path).with_suffix(".tmp.npz")
        try:
            np.savez(tmp, **{f: getattr(self, f) for f in _FIELDS})
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: Path) -> "Shard":
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {f: np.array(z[f]) for f in _FIELDS}
        except FileNotFoundError as exc:
            raise RunDirError(f"{path}: template shard is missing") from exc
        except Exception as exc:
            raise RunDirError(f"{path}: not a readable template shard ({type(exc).__name__}: {exc})") from exc
        if data["minutiae"].dtype != MINUTIA_DTYPE:
            raise RunDirError(f"{path}: unexpected minutiae layout {data['minutiae'].dtype}")
        return cls(**data)


def shard_bounds(subject_index: np.ndarray, shard_size: int) -> list[tuple[int, int]]:
    """Cut entries sorted by subject into shards of about ``shard_size`` entries that
    never split a subject (a subject larger than ``shard_size`` gets a shard of its own)."""
    si = np.asarray(subject_index)
    n = si.size
    if shard_size < 1:
        raise ValueError(f"shard size must be at least 1, got {shard_size}")
    if n and np.any(np.diff(si) < 0):
        raise ValueError("entries must be sorted by subject")
    starts_of_subject = np.flatnonzero(np.r_[True, si[1:] != si[:-1]]) if n else np.empty(0, dtype=np.intp)
    bounds: list[tuple[int, int]] = []
    lo = 0
    while lo < n:
        hi = min(lo + shard_size, n)
        if hi < n:
            # move hi down to a subject start (never split a subject), unless the shard
            # would be empty: then move it up to the next start
            k = int(np.searchsorted(starts_of_subject, hi, side="right")) - 1
            cut = int(starts_of_subject[k])
            if cut <= lo:
                nxt = int(np.searchsorted(starts_of_subject, lo, side="right"))
                cut = int(starts_of_subject[nxt]) if nxt < starts_of_subject.size else n
            hi = cut
        bounds.append((lo, hi))
        lo = hi
    return bounds


class TemplateStore:
    """A store folder: ``store.json`` and ``shard-NNNNN.npz`` files."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @property
    def meta_path(self) -> Path:
        return self.path / "store.json"

    def shard_path(self, i: int) -> Path:
        return self.path / f"shard-{i:05d}.npz"

    def read_meta(self) -> dict[str, Any]:
        try:
            meta = json.loads(self.meta_path.read_text())
        except FileNotFoundError as exc:
            raise RunDirError(f"{self.path}: not a template store (store.json is missing)") from exc
        except json.JSONDecodeError as exc:
            raise RunDirError(f"{self.meta_path}: not valid JSON ({exc})") from exc
        if meta.get("format") != STORE_FORMAT or meta.get("version") != STORE_VERSION:
            raise RunDirError(f"{self.meta_path}: not a version {STORE_VERSION} template store")
        return meta

    def write_meta(self, meta: dict[str, Any]) -> None:
        from bench.store import write_json

        self.path.mkdir(parents=True, exist_ok=True)
        write_json(self.meta_path, {"format": STORE_FORMAT, "version": STORE_VERSION, **meta})

    def n_shards(self) -> int:
        return int(self.read_meta()["n_shards"])

    def load(self, i: int) -> Shard:
        return Shard.load(self.shard_path(i))

    def shard_is_valid(self, i: int, ids: Sequence[str]) -> bool:
        """Is shard ``i`` on disk, readable, and made of exactly these ids?"""
        p = self.shard_path(i)
        if not p.is_file():
            return False
        try:
            with np.load(p, allow_pickle=False) as z:
                stored = z["ids"]
                if stored.shape != (len(ids),) or not np.array_equal(stored, np.asarray(ids, dtype=str)):
                    return False
                for f in _FIELDS:  # every member readable (a torn file fails here)
                    z[f]
        except Exception:
            return False
        return True

    def bytes_on_disk(self) -> int:
        return sum(p.stat().st_size for p in self.path.glob("shard-*.npz"))
