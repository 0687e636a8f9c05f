"""FVC2000, FVC2002 and FVC2004 databases (DB1-DB4, sets A and B).

Each database has 110 fingers x 8 impressions: set A = fingers 1-100, set B = fingers
101-110. Files are ``<finger>_<impression>.tif`` in one folder; ``.tiff``, ``.bmp`` and
``.png`` with the same stem are accepted too (users convert). When two files exist for the
same sample, the first in that order is used and the other is reported as a duplicate.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bench import references
from bench.datasets.base import Dataset, DatasetError, DatasetInfo, Problem, Sample
from bench.datasets.imagecheck import check_level
from bench.datasets.scan import describe_names, list_files, validated

log = logging.getLogger(__name__)

IMPRESSIONS = 8
_EXT_ORDER = (".tif", ".tiff", ".bmp", ".png")
_NAME = re.compile(r"^(?P<finger>\d+)_(?P<impression>\d+)(?P<ext>\.(?:tif|tiff|bmp|png))$", re.IGNORECASE)

_URLS = {
    2000: "http://bias.csr.unibo.it/fvc2000/",
    2002: "http://bias.csr.unibo.it/fvc2002/",
    2004: "http://bias.csr.unibo.it/fvc2004/",
}
_CITATIONS = {
    2000: "D. Maio, D. Maltoni, R. Cappelli, J. L. Wayman, A. K. Jain, \"FVC2000: Fingerprint "
    "Verification Competition\", IEEE Trans. PAMI 24(3):402-412, 2002.",
    2002: "D. Maio, D. Maltoni, R. Cappelli, J. L. Wayman, A. K. Jain, \"FVC2002: Second Fingerprint "
    "Verification Competition\", Proc. 16th ICPR, vol. 3, pp. 811-814, 2002.",
    2004: "D. Maio, D. Maltoni, R. Cappelli, J. L. Wayman, A. K. Jain, \"FVC2004: Third Fingerprint "
    "Verification Competition\", Proc. ICBA 2004, LNCS 3072, pp. 1-7, 2004; R. Cappelli, D. Maio, "
    "D. Maltoni, J. L. Wayman, A. K. Jain, \"Performance Evaluation of Fingerprint Verification "
    "Systems\", IEEE Trans. PAMI 28(1):3-18, 2006.",
}
_BIBTEX = {
    2000: references.FVC2000,
    2002: references.FVC2002,
    2004: references.FVC2004 + "\n" + references.FVC_PERFORMANCE,
}
_LICENCE = {
    "a": "Set A is not a free download: it is distributed with the book Handbook of Fingerprint "
    "Recognition (Maltoni, Maio, Jain, Prabhakar; 2nd ed. 2009) for research use; no redistribution.",
    "b": "Set B is a free download from the organisers' site, for research use; no redistribution.",
}

# (year, db) -> (sensor, dpi, (width, height), notes)
_DBS: dict[tuple[int, int], tuple[str, float, tuple[int, int], str]] = {
    (2000, 1): ("Secure Desktop Scanner (KeyTronic), optical", 500, (300, 300), ""),
    (2000, 2): ("TouchChip (ST Microelectronics), capacitive", 500, (256, 364), ""),
    (2000, 3): ("DF-90 (Identicator Technology), optical", 500, (448, 478), ""),
    (2000, 4): ("SFinGe synthetic generator", 500, (240, 320), "Synthetic; resolution about 500 dpi."),
    (2002, 1): ("TouchView II (Identix), optical", 500, (388, 374), ""),
    (2002, 2): ("FX2000 (Biometrika), optical", 569, (296, 560), "Resolution 569 dpi, not 500."),
    (2002, 3): ("100 SC (Precise Biometrics), capacitive", 500, (300, 300), ""),
    (2002, 4): ("SFinGe v2.51 synthetic generator", 500, (288, 384), "Synthetic; resolution about 500 dpi."),
    (2004, 1): ("V300 (CrossMatch), optical", 500, (640, 480), ""),
    (2004, 2): ("U.are.U 4000 (Digital Persona), optical", 500, (328, 364), ""),
    (2004, 3): ("FingerChip FCD4B14CB (Atmel), thermal sweeping", 512, (300, 480), "Resolution 512 dpi, not 500."),
    (2004, 4): ("SFinGe v3.0 synthetic generator", 500, (288, 384), "Synthetic; resolution about 500 dpi."),
}


@dataclass(frozen=True)
class FvcSpec:
    year: int
    db: int
    set: str  # "a" or "b"

    @property
    def name(self) -> str:
        return f"fvc{self.year}-db{self.db}-{self.set}"

    @property
    def first_finger(self) -> int:
        return 1 if self.set == "a" else 101

    @property
    def fingers(self) -> int:
        return 100 if self.set == "a" else 10

    @property
    def finger_range(self) -> range:
        return range(self.first_finger, self.first_finger + self.fingers)


def _info(spec: FvcSpec) -> DatasetInfo:
    sensor, dpi, size, notes = _DBS[(spec.year, spec.db)]
    s = spec.set.upper()
    pairs = "2,800 genuine / 4,950 impostor" if spec.set == "a" else "280 genuine / 45 impostor"
    return DatasetInfo(
        name=spec.name,
        title=f"FVC{spec.year} DB{spec.db} set {s}",
        sensor=sensor,
        dpi=float(dpi),
        image_size=size,
        fingers=spec.fingers,
        impressions=IMPRESSIONS,
        licence=_LICENCE[spec.set],
        citation=_CITATIONS[spec.year],
        bibtex=_BIBTEX[spec.year],
        url=_URLS[spec.year],
        protocols=("fvc", "all-pairs"),
        default_subdir=f"fvc{spec.year}/DB{spec.db}_{s}",
        notes=" ".join(
            x
            for x in (
                f"Fingers {spec.finger_range.start}-{spec.finger_range.stop - 1} x {IMPRESSIONS} impressions; "
                f"FVC protocol: {pairs} comparisons.",
                notes,
            )
            if x
        ),
    )


def alternative_subdirs(spec: FvcSpec) -> tuple[str, ...]:
    """Other places below a data root where the set is looked for (matched ignoring case)."""
    return (f"fvc{spec.year}/Dbs/DB{spec.db}_{spec.set.upper()}",)


def make_loader(spec: FvcSpec) -> Callable[..., Dataset]:
    def load(info: DatasetInfo, root: Path, *, validate: str = "full") -> Dataset:
        """Open an FVC set. ``validate``: "full" (decode every image), "header", "none"."""
        return _load(spec, info, root, check_level(validate))

    load.__name__ = f"load_{spec.name.replace('-', '_')}"
    return load


def _load(spec: FvcSpec, info: DatasetInfo, root: Path, validate: str) -> Dataset:
    problems: list[Problem] = []
    found: dict[tuple[int, int], list[Path]] = {}
    outside: list[tuple[int, Path]] = []
    files = list_files(root, problems=problems)
    for path in files:
        m = _NAME.match(path.name)
        if not m:
            problems.append(
                Problem("extra", str(path), f"{path.name}: not named <finger>_<impression>.tif; ignored")
            )
            continue
        finger, impression = int(m["finger"]), int(m["impression"])
        if finger not in spec.finger_range or not 1 <= impression <= IMPRESSIONS:
            outside.append((finger, path))
            continue
        found.setdefault((finger, impression), []).append(path)

    if not found:
        raise DatasetError(_nothing_expected_message(spec, root, files, outside))

    first, last = spec.finger_range.start, spec.finger_range.stop - 1
    for _finger, path in outside:
        problems.append(
            Problem(
                "extra",
                str(path),
                f"{path.name}: not a sample of {info.title} (fingers {first}-{last}, "
                f"impressions 1-{IMPRESSIONS}); ignored",
            )
        )

    samples: list[Sample] = []
    for finger in spec.finger_range:
        for impression in range(1, IMPRESSIONS + 1):
            sid = f"{finger}_{impression}"
            paths = sorted(found.get((finger, impression), []), key=_ext_rank)
            if not paths:
                expected = root / f"{sid}.tif"
                why = "a folder of that name is there, not an image file" if expected.is_dir() else "absent"
                problems.append(Problem("missing", str(expected), f"{expected.name}: expected by the layout, {why}"))
                samples.append(Sample(sid, str(finger), impression, None, info.dpi))
                continue
            for other in paths[1:]:
                problems.append(
                    Problem(
                        "duplicate",
                        str(other),
                        f"{other.name}: a second file for sample {sid}; {paths[0].name} is used",
                    )
                )
            samples.append(Sample(sid, str(finger), impression, paths[0], info.dpi))

    samples = validated(samples, problems, info.image_size, validate)
    _add_size_hint(spec, problems)
    missing = sum(1 for p in problems if p.kind == "missing")
    if missing:
        log.warning("%s: %d of %d expected files are missing in %s", info.name, missing, len(samples), root)
    return Dataset(info=info, root=root, samples=samples, problems=problems, params={"validate": validate})


def _ext_rank(path: Path) -> tuple[int, str]:
    ext = path.suffix.lower()
    return (_EXT_ORDER.index(ext) if ext in _EXT_ORDER else len(_EXT_ORDER), path.name)


def _nothing_expected_message(spec: FvcSpec, root: Path, files: list[Path], outside: list[tuple[int, Path]]) -> str:
    first, last = spec.finger_range.start, spec.finger_range.stop - 1
    msg = (
        f"no file matching <finger>_<impression>.tif for fingers {first}-{last} "
        f"(impressions 1-{IMPRESSIONS}) in {root}"
    )
    if outside:
        fingers = sorted({f for f, _ in outside})
        msg += f"; found {len(outside)} files for fingers {fingers[0]}-{fingers[-1]}"
        other_set = "b" if spec.set == "a" else "a"
        other = FvcSpec(spec.year, spec.db, other_set)
        if all(f in other.finger_range for f in fingers):
            msg += f": is this set {other_set.upper()}? use {other.name}"
    elif files:
        msg += f"; found {len(files)} other files ({describe_names(files)})"
    else:
        subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if subdirs:
            msg += f"; it holds only sub-folders ({describe_names(subdirs)}): give the set's own folder"
    return msg


def _add_size_hint(spec: FvcSpec, problems: list[Problem]) -> None:
    """When every image has the same wrong size, name the FVC databases of that size."""
    sized = [p for p in problems if p.kind == "wrong_size"]
    if len(sized) < IMPRESSIONS:
        return
    matches = [re.search(r"image is (\d+)x(\d+) pixels", p.message) for p in sized]
    sizes = {(int(m[1]), int(m[2])) for m in matches if m}
    if len(sizes) != 1:
        return
    (size,) = sizes
    names = [
        FvcSpec(y, d, spec.set).name
        for (y, d), (_, _, db_size, _) in _DBS.items()
        if db_size == size and (y, d) != (spec.year, spec.db)
    ]
    if not names:
        return
    hint = f" (all these images are {size[0]}x{size[1]}, the size of {', '.join(names)}: wrong database?)"
    problems[:] = [Problem(p.kind, p.path, p.message + hint) if p in sized else p for p in problems]


SPECS: tuple[FvcSpec, ...] = tuple(
    FvcSpec(year, db, s) for year in (2000, 2002, 2004) for db in (1, 2, 3, 4) for s in ("a", "b")
)


def registrations() -> list[tuple[DatasetInfo, Callable[..., Dataset], tuple[str, ...]]]:
    """(info, loader, alternative sub-folders) of the 24 FVC sets."""
    return [(_info(spec), make_loader(spec), alternative_subdirs(spec)) for spec in SPECS]
