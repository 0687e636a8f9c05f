"""What a dataset is to the harness: samples with subject ids, a resolution, metadata,
and a list of problems found when it was opened.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np


class DatasetError(Exception):
    """A dataset cannot be opened at all (unknown name, missing or empty root...)."""


class ImageError(Exception):
    """One image cannot be read or is not a usable fingerprint image."""


@dataclass(frozen=True)
class DatasetInfo:
    """Metadata of a dataset as published."""

    name: str
    title: str
    sensor: str
    dpi: float
    image_size: tuple[int, int] | None  # (width, height) in pixels, None if it varies
    fingers: int | None
    impressions: int | None
    licence: str
    citation: str
    url: str
    protocols: tuple[str, ...]
    default_subdir: str = ""  # where it lies below a --data-root
    notes: str = ""
    bibtex: str = ""  # BibTeX of the publications to cite (bench.references), for reports


@dataclass(frozen=True)
class Sample:
    """One image of a dataset.

    ``subject`` identifies the finger (two samples with the same subject are mated);
    ``impression`` is 1-based. ``path`` is None when the layout expects a file that is
    absent (it is then also listed among the dataset's problems).
    """

    id: str
    subject: str
    impression: int
    path: Path | None
    dpi: float
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Problem:
    """Something wrong found when a dataset was opened, naming the file concerned."""

    kind: str  # "missing" | "extra" | "duplicate" | "unreadable" | "wrong_size" | "empty"
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.path}: {self.message}"


@dataclass
class Dataset:
    info: DatasetInfo
    root: Path
    samples: list[Sample]
    problems: list[Problem] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    reader: Callable[[Sample], np.ndarray] | None = None

    @property
    def name(self) -> str:
        return self.info.name

    def sample(self, sample_id: str) -> Sample:
        for s in self.samples:
            if s.id == sample_id:
                return s
        raise KeyError(sample_id)

    def read_image(self, sample: Sample) -> np.ndarray:
        """The sample as a 2-D uint8 array; raises :class:`ImageError` naming the file."""
        if self.reader is not None:
            return self.reader(sample)
        if sample.path is None:
            raise ImageError(f"{sample.id}: file is missing from the dataset")
        return read_grayscale(sample.path, self.info.image_size)

    def file_digests(self) -> dict[str, str]:
        """SHA-256 of every present file, by sample id."""
        return {s.id: sha256_file(s.path) for s in self.samples if s.path is not None and s.path.is_file()}

    @property
    def subjects(self) -> list[str]:
        """Distinct subject (finger) ids, in order of first appearance."""
        return list(dict.fromkeys(s.subject for s in self.samples))

    def problems_of(self, kind: str) -> list[Problem]:
        """The problems of one kind ("missing", "extra", ...)."""
        return [p for p in self.problems if p.kind == kind]

    def describe(self) -> dict[str, Any]:
        """A JSON-serialisable summary: what was opened, where, and what was found."""
        counts: dict[str, int] = {}
        for p in self.problems:
            counts[p.kind] = counts.get(p.kind, 0) + 1
        return {
            "name": self.info.name,
            "title": self.info.title,
            "root": str(self.root),
            "dpi": self.info.dpi,
            "image_size": list(self.info.image_size) if self.info.image_size else None,
            "samples": len(self.samples),
            "present": sum(1 for s in self.samples if s.path is not None),
            "subjects": len(self.subjects),
            "problems": len(self.problems),
            "problem_counts": counts,
            "protocols": list(self.info.protocols),
            "params": {k: _jsonable(v) for k, v in self.params.items()},
        }


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_grayscale(path: Path, expected_size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode an image file to 2-D uint8 grayscale.

    Colour images are converted to gray (an obvious conversion); 16-bit images are
    scaled to 8 bits. Anything else that is not a decodable image raises ImageError
    with the file name and the reason. ``expected_size`` is (width, height).
    """
    import cv2

    from bench.datasets.imagecheck import declared_size

    path = Path(path)
    declared_size(path)  # refuses, from the header, an image too large to decode
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise ImageError(f"{path}: cannot read file ({exc.strerror})") from exc
    if data.size == 0:
        raise ImageError(f"{path}: file is empty")
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ImageError(f"{path}: not a decodable image (corrupt, truncated or unknown format)")
    if img.ndim == 3:
        if img.shape[2] == 4:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2GRAY)
        elif img.shape[2] == 3:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        elif img.shape[2] == 1:
            img = img[:, :, 0]
        else:
            raise ImageError(f"{path}: unsupported number of channels {img.shape[2]}")
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise ImageError(f"{path}: unsupported pixel type {img.dtype}")
    if expected_size is not None:
        w, h = expected_size
        if img.shape != (h, w):
            raise ImageError(
                f"{path}: image is {img.shape[1]}x{img.shape[0]} pixels, "
                f"the dataset's images are {w}x{h}"
            )
    return np.ascontiguousarray(img)
