"""Identification (1:N) protocols as data: a gallery of enrolled templates and probes.

A protocol lists the gallery (template id, subject; one or more templates per subject)
and the probes (template id, subject). A probe is *mated* when its subject has at least
one template in the gallery, *non-mated* otherwise; this is derived from the subjects,
never taken on trust. Protocols are exported to, and imported from, one CSV file::

    role,id,subject,mated
    gallery,101_1,101,
    probe,101_2,101,1
    probe,105_2,105,0

(``mated`` is written for readability and checked on import.) Builders:

* :func:`from_dataset` -- FVC style: the impressions in ``enrol_impressions`` (default
  the first) of every finger are enrolled, every other impression is a probe. Datasets
  that mark samples with ``attributes["role"]`` (SOCOFing: real references, altered
  probes) are split by that mark. With ``mated_fraction`` some fingers are left out of
  the gallery (seeded choice) so that about that share of the probes is mated (FpVTE:
  about one third); ``distractors`` adds synthetic non-mated gallery subjects.
* :func:`synthetic` -- a gallery of synthetic subjects (see :mod:`bench.synthetic.model`) of any
  size, ``probes`` probes of which ``mated_fraction`` are mated (another impression of
  a gallery subject) and the rest impressions of subjects outside the gallery.
"""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from bench.datasets.base import Dataset
from bench.synthetic import model as syn
from bench.protocols import ProtocolError, _natural_key
from bench.store import unique_tmp

#: FpVTE 2012 used about one third mated searches.
FPVTE_MATED_FRACTION = 1 / 3
CSV_FIELDS = ["role", "id", "subject", "mated"]


@dataclass
class IdentificationProtocol:
    """Gallery and probes of a 1:N benchmark.

    ``allow_probe_in_gallery``: when False (the default) a probe may not be a gallery
    template (same id); the run also refuses a probe whose template is identical to a
    gallery template.
    """

    name: str
    gallery_ids: list[str]
    gallery_subjects: list[str]
    probe_ids: list[str]
    probe_subjects: list[str]
    params: dict[str, Any] = field(default_factory=dict)
    allow_probe_in_gallery: bool = False

    def __post_init__(self) -> None:
        self.check()

    # ---------------------------------------------------------------- derived
    @property
    def n_gallery(self) -> int:
        return len(self.gallery_ids)

    @property
    def n_probes(self) -> int:
        return len(self.probe_ids)

    @property
    def subjects(self) -> list[str]:
        """Distinct gallery subjects in order of first appearance (candidate list ids)."""
        return list(dict.fromkeys(self.gallery_subjects))

    def probe_mated(self) -> np.ndarray:
        """Boolean per probe: its subject is enrolled."""
        enrolled = set(self.gallery_subjects)
        return np.fromiter((s in enrolled for s in self.probe_subjects), dtype=bool, count=self.n_probes)

    @property
    def n_mated(self) -> int:
        return int(self.probe_mated().sum())

    def digest(self) -> str:
        h = hashlib.sha256()
        for i, s in zip(self.gallery_ids, self.gallery_subjects):
            h.update(f"g\t{i}\t{s}\n".encode())
        for i, s in zip(self.probe_ids, self.probe_subjects):
            h.update(f"p\t{i}\t{s}\n".encode())
        h.update(f"allow_probe_in_gallery={self.allow_probe_in_gallery}".encode())
        return h.hexdigest()

    def describe(self) -> dict[str, Any]:
        n_mated = self.n_mated
        return {
            "name": self.name,
            "params": self.params,
            "n_gallery_templates": self.n_gallery,
            "n_gallery_subjects": len(self.subjects),
            "n_probes": self.n_probes,
            "n_mated_probes": n_mated,
            "n_nonmated_probes": self.n_probes - n_mated,
            "allow_probe_in_gallery": self.allow_probe_in_gallery,
            "sha256": self.digest(),
        }

    # ---------------------------------------------------------------- checks
    def check(self) -> None:
        """Raise ProtocolError for an empty side, a duplicate id, a blank id or subject,
        or (unless allowed) a probe that is also a gallery template."""
        if len(self.gallery_ids) != len(self.gallery_subjects) or len(self.probe_ids) != len(self.probe_subjects):
            raise ProtocolError("ids and subjects must have the same length")
        if not self.gallery_ids:
            raise ProtocolError(f"protocol {self.name}: the gallery is empty")
        if not self.probe_ids:
            raise ProtocolError(f"protocol {self.name}: there are no probes")
        for role, ids, subjects in (("gallery", self.gallery_ids, self.gallery_subjects),
                                    ("probe", self.probe_ids, self.probe_subjects)):
            blank = [i for i, (a, b) in enumerate(zip(ids, subjects)) if not str(a).strip() or not str(b).strip()]
            if blank:
                raise ProtocolError(f"protocol {self.name}: {len(blank)} {role} entries with a blank id or "
                                    f"subject (first at position {blank[0] + 1})")
            dup = _duplicates(ids)
            if dup:
                raise ProtocolError(f"protocol {self.name}: duplicate {role} ids ({len(dup)}): "
                                    f"{', '.join(dup[:5])}{' ...' if len(dup) > 5 else ''}")
        if not self.allow_probe_in_gallery:
            both = sorted(set(self.gallery_ids).intersection(self.probe_ids))
            if both:
                raise ProtocolError(
                    f"protocol {self.name}: {len(both)} probes are also gallery templates "
                    f"({', '.join(both[:5])}); a probe must not be enrolled (allow_probe_in_gallery=True "
                    f"to permit it)")
        owner: dict[str, str] = {}
        for i, s in zip(self.gallery_ids, self.gallery_subjects):
            owner[i] = s
        for i, s in zip(self.probe_ids, self.probe_subjects):
            if i in owner and owner[i] != s:
                raise ProtocolError(f"protocol {self.name}: template {i} belongs to subject {owner[i]!r} in "
                                    f"the gallery and to {s!r} as a probe")

    # ---------------------------------------------------------------- CSV
    def to_csv(self, path: Path) -> None:
        path = Path(path)
        tmp = unique_tmp(path)
        mated = self.probe_mated()
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(CSV_FIELDS)
            for i, s in zip(self.gallery_ids, self.gallery_subjects):
                w.writerow(["gallery", i, s, ""])
            for (i, s), m in zip(zip(self.probe_ids, self.probe_subjects), mated):
                w.writerow(["probe", i, s, int(m)])
        tmp.replace(path)


def _duplicates(ids: Sequence[str]) -> list[str]:
    if len(set(ids)) == len(ids):
        return []
    return sorted(k for k, v in Counter(ids).items() if v > 1)


def from_csv(path: Path, allow_probe_in_gallery: bool = False) -> IdentificationProtocol:
    """Read a protocol CSV (columns role,id,subject[,mated]); every problem is an error
    naming the line."""
    path = Path(path)
    gallery_ids: list[str] = []
    gallery_subjects: list[str] = []
    probe_ids: list[str] = []
    probe_subjects: list[str] = []
    given_mated: list[tuple[int, str, str]] = []
    try:
        f = open(path, newline="")
    except OSError as exc:
        raise ProtocolError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    with f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not {"role", "id", "subject"} <= set(reader.fieldnames):
            raise ProtocolError(f"{path}: needs a header with columns role,id,subject[,mated]")
        for line, row in enumerate(reader, start=2):
            role = (row["role"] or "").strip().lower()
            tid, subject = (row["id"] or "").strip(), (row["subject"] or "").strip()
            if not tid or not subject:
                raise ProtocolError(f"{path}:{line}: blank id or subject")
            if role == "gallery":
                gallery_ids.append(tid)
                gallery_subjects.append(subject)
            elif role == "probe":
                probe_ids.append(tid)
                probe_subjects.append(subject)
                mated = (row.get("mated") or "").strip().lower()
                if mated:
                    if mated not in ("0", "1", "true", "false"):
                        raise ProtocolError(f"{path}:{line}: mated must be 0/1/true/false, got {mated!r}")
                    given_mated.append((line, tid, mated))
            else:
                raise ProtocolError(f"{path}:{line}: role must be 'gallery' or 'probe', got {row['role']!r}")
    try:
        protocol = IdentificationProtocol(f"csv:{path.name}", gallery_ids, gallery_subjects, probe_ids,
                                          probe_subjects, {"file": str(path)}, allow_probe_in_gallery)
    except ProtocolError as exc:
        raise ProtocolError(f"{path}: {exc}") from None
    enrolled = set(gallery_subjects)
    subject_of = dict(zip(probe_ids, probe_subjects))
    for line, tid, mated in given_mated:
        derived = subject_of[tid] in enrolled
        if (mated in ("1", "true")) != derived:
            raise ProtocolError(f"{path}:{line}: probe {tid} is marked mated={mated} but its subject "
                                f"{subject_of[tid]!r} is {'' if derived else 'not '}in the gallery")
    return protocol


# ------------------------------------------------------------------ builders
def from_dataset(
    dataset: Dataset,
    enrol_impressions: Iterable[int] = (1,),
    mated_fraction: float | None = None,
    seed: int = 0,
    distractors: int = 0,
    allow_probe_in_gallery: bool = False,
) -> IdentificationProtocol:
    """Gallery and probes from a dataset (see the module docstring).

    ``mated_fraction`` None keeps every finger enrolled (all probes mated, closed set);
    a value in (0, 1] leaves out ``round((1 - f) * fingers)`` fingers (seeded), so that
    about that share of the probes is mated. ``distractors`` adds that many synthetic
    subjects (one template each) to the gallery.
    """
    samples = [s for s in dataset.samples]
    by_role = any("role" in s.attributes for s in samples)
    enrol = set(int(i) for i in enrol_impressions)
    if by_role:
        gallery = [s for s in samples if s.attributes.get("role") == "reference"]
        probes = [s for s in samples if s.attributes.get("role") == "probe"]
    else:
        gallery = [s for s in samples if s.impression in enrol]
        probes = [s for s in samples if s.impression not in enrol]
    if not gallery or not probes:
        raise ProtocolError(
            f"dataset {dataset.name}: {len(gallery)} gallery and {len(probes)} probe samples; "
            f"both must be non-empty (enrolled impressions: {sorted(enrol)})")
    gallery.sort(key=lambda s: (_natural_key(s.subject), s.impression, s.id))
    probes.sort(key=lambda s: (_natural_key(s.subject), s.impression, s.id))
    params: dict[str, Any] = {"dataset": dataset.name, "enrol_impressions": sorted(enrol),
                              "mated_fraction": mated_fraction, "seed": seed, "distractors": distractors}
    if mated_fraction is not None:
        if not 0 < mated_fraction <= 1:
            raise ProtocolError(f"mated_fraction must be in (0, 1], got {mated_fraction}")
        fingers = list(dict.fromkeys(s.subject for s in gallery))
        n_out = int(round((1 - mated_fraction) * len(fingers)))
        if n_out >= len(fingers):
            raise ProtocolError(f"mated_fraction {mated_fraction} leaves no finger of {len(fingers)} enrolled")
        rng = np.random.default_rng(seed)
        left_out = {fingers[i] for i in rng.choice(len(fingers), size=n_out, replace=False)}
        gallery = [s for s in gallery if s.subject not in left_out]
    gids = [s.id for s in gallery]
    gsub = [s.subject for s in gallery]
    if distractors:
        gids += [syn.template_id(k, 1) for k in range(1, int(distractors) + 1)]
        gsub += [syn.subject_id(k) for k in range(1, int(distractors) + 1)]
    name = f"{dataset.name}-1n" + (f"-m{mated_fraction:.2f}" if mated_fraction is not None else "")
    if distractors:
        name += f"-d{int(distractors)}"
    return IdentificationProtocol(name, gids, gsub, [s.id for s in probes], [s.subject for s in probes],
                                  params, allow_probe_in_gallery)


def synthetic(
    gallery_subjects: int,
    probes: int,
    mated_fraction: float = FPVTE_MATED_FRACTION,
    gallery_impressions: int = 1,
    seed: int = 0,
) -> IdentificationProtocol:
    """A synthetic gallery of ``gallery_subjects`` subjects (``gallery_impressions``
    templates each) and ``probes`` probes, ``round(probes * mated_fraction)`` of them mated.

    Mated probes are impression ``gallery_impressions + 1`` of distinct gallery subjects
    drawn with ``seed``; non-mated probes are impression 1 of the subjects numbered after
    the gallery. Which *templates* these ids stand for is decided by the template
    source (model and seed), not here.
    """
    n = int(gallery_subjects)
    k = int(gallery_impressions)
    if n < 1 or k < 1 or probes < 1:
        raise ProtocolError("gallery_subjects, gallery_impressions and probes must be at least 1")
    if not 0 <= mated_fraction <= 1:
        raise ProtocolError(f"mated_fraction must be in [0, 1], got {mated_fraction}")
    n_mated = int(round(probes * mated_fraction))
    if n_mated > n:
        raise ProtocolError(f"{n_mated} mated probes need as many gallery subjects; the gallery has {n}")
    rng = np.random.default_rng(seed)
    mated = np.sort(rng.choice(n, size=n_mated, replace=False)) + 1 if n_mated else np.empty(0, dtype=int)
    gids = [syn.template_id(s, i) for s in range(1, n + 1) for i in range(1, k + 1)]
    gsub = [syn.subject_id(s) for s in range(1, n + 1) for _ in range(k)]
    pids = [syn.template_id(int(s), k + 1) for s in mated]
    psub = [syn.subject_id(int(s)) for s in mated]
    n_non = probes - n_mated
    pids += [syn.template_id(s, 1) for s in range(n + 1, n + 1 + n_non)]
    psub += [syn.subject_id(s) for s in range(n + 1, n + 1 + n_non)]
    params = {"gallery_subjects": n, "probes": int(probes), "mated_fraction": mated_fraction,
              "gallery_impressions": k, "seed": seed}
    name = f"synthetic-g{n}x{k}-p{probes}-m{mated_fraction:.2f}-s{seed}"
    return IdentificationProtocol(name, gids, gsub, pids, psub, params)

