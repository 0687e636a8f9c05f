"""Evaluation protocols as data: lists of (probe, reference) pairs for verification (this
module) and galleries with probes for identification (:mod:`bench.protocols.identification`).

A protocol is a function of a dataset that returns a :class:`PairList`; pair lists can be
exported to CSV and imported back, so a user can bring their own. Whether a pair is
genuine (mated) is derived from the samples' subjects, never taken on trust.

Built-in protocols:

* ``fvc`` -- FVC2000/2002/2004 verification (Maio et al., IEEE TPAMI 24(3) 2002;
  Cappelli et al., IEEE TPAMI 28(1) 2006). Genuine: each impression of a finger against
  every later impression of the same finger (the symmetric comparison is not made):
  C(8,2) x 100 = 2,800 on an A set, 280 on a B set. Impostor: the first impression of
  each finger against the first impression of every later finger: C(100,2) = 4,950 on an
  A set, 45 on a B set. The earlier impression is the enrolled reference, the later one
  the probe, as in the FVC MATCH call.
* ``all-pairs`` -- the same genuine pairs; impostors are every pair of impressions of
  different fingers (C(80,2) - 280 = 2,880 on a B set), for when 45 impostor scores
  cannot resolve an operating point.
* ``socofing`` -- SOCOFing altered versus real: each altered image (probe) against the
  real image of the same finger (genuine) and against the real images of other fingers
  (impostor; all of them, or a seeded sample of ``impostors_per_probe``).
"""

from __future__ import annotations

import csv
import io
import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bench.datasets.base import Dataset, Sample


class ProtocolError(ValueError):
    """A protocol cannot be built for this dataset, or a pair list is malformed."""


@dataclass(frozen=True)
class Pair:
    probe: str
    reference: str
    genuine: bool


@dataclass
class PairList:
    protocol: str
    pairs: list[Pair]
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def n_genuine(self) -> int:
        return sum(p.genuine for p in self.pairs)

    @property
    def n_impostor(self) -> int:
        return len(self.pairs) - self.n_genuine

    def digest(self) -> str:
        h = hashlib.sha256()
        for p in self.pairs:
            h.update(f"{p.probe}\t{p.reference}\t{int(p.genuine)}\n".encode())
        return h.hexdigest()

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.protocol,
            "params": self.params,
            "n_pairs": len(self.pairs),
            "n_genuine": self.n_genuine,
            "n_impostor": self.n_impostor,
            "pairs_sha256": self.digest(),
        }

    def to_csv(self, path: Path) -> None:
        import io

        from bench.store import atomic_write

        buf = io.StringIO(newline="")
        w = csv.writer(buf)
        w.writerow(["probe", "reference", "genuine"])
        for p in self.pairs:
            w.writerow([p.probe, p.reference, int(p.genuine)])
        atomic_write(Path(path), buf.getvalue().encode())


def _by_subject(samples: list[Sample]) -> dict[str, list[Sample]]:
    groups: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        groups[s.subject].append(s)
    for g in groups.values():
        g.sort(key=lambda s: (s.impression, s.id))
    return dict(sorted(groups.items(), key=lambda kv: _natural_key(kv[0])))


def _natural_key(text: str) -> tuple:
    import re

    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text))


def _genuine_pairs(groups: dict[str, list[Sample]]) -> list[Pair]:
    pairs = []
    for impressions in groups.values():
        for i, ref in enumerate(impressions):
            for probe in impressions[i + 1 :]:
                pairs.append(Pair(probe.id, ref.id, True))
    return pairs


def _verification_samples(dataset: Dataset) -> list[Sample]:
    # SOCOFing-style datasets mark reference-only samples; verification uses the rest.
    return [s for s in dataset.samples if not s.attributes.get("reference_only")]


def fvc(dataset: Dataset) -> PairList:
    groups = _by_subject(_verification_samples(dataset))
    if not groups:
        raise ProtocolError(f"dataset {dataset.name} has no samples")
    pairs = _genuine_pairs(groups)
    firsts = [g[0] for g in groups.values()]
    for i, ref in enumerate(firsts):
        for probe in firsts[i + 1 :]:
            pairs.append(Pair(probe.id, ref.id, False))
    return PairList("fvc", pairs)


def all_pairs(dataset: Dataset) -> PairList:
    groups = _by_subject(_verification_samples(dataset))
    if not groups:
        raise ProtocolError(f"dataset {dataset.name} has no samples")
    pairs = _genuine_pairs(groups)
    flat = [s for g in groups.values() for s in g]
    for i, ref in enumerate(flat):
        for probe in flat[i + 1 :]:
            if probe.subject != ref.subject:
                pairs.append(Pair(probe.id, ref.id, False))
    return PairList("all-pairs", pairs)


def socofing(dataset: Dataset, impostors_per_probe: int | None = None, seed: int = 0) -> PairList:
    probes = [s for s in dataset.samples if s.attributes.get("alteration")]
    refs = [s for s in dataset.samples if not s.attributes.get("alteration")]
    if not probes or not refs:
        raise ProtocolError(
            f"the socofing protocol needs altered probes and real references; dataset "
            f"{dataset.name} has {len(probes)} altered and {len(refs)} real samples"
        )
    ref_by_subject: dict[str, list[Sample]] = defaultdict(list)
    for r in refs:
        ref_by_subject[r.subject].append(r)
    rng = np.random.default_rng(seed)
    pairs: list[Pair] = []
    for probe in sorted(probes, key=lambda s: _natural_key(s.id)):
        for r in ref_by_subject.get(probe.subject, []):
            pairs.append(Pair(probe.id, r.id, True))
        others = [r for r in refs if r.subject != probe.subject]
        if impostors_per_probe is not None and impostors_per_probe < len(others):
            idx = np.sort(rng.choice(len(others), size=impostors_per_probe, replace=False))
            others = [others[i] for i in idx]
        pairs.extend(Pair(probe.id, r.id, False) for r in others)
    return PairList("socofing", pairs, {"impostors_per_probe": impostors_per_probe, "seed": seed})


def f_vs_s(dataset: Dataset, impostors_per_probe: int | None = None, seed: int = 0) -> PairList:
    """NIST SD 4's two takes: the second impression ("s") of each finger is the probe, the
    first ("f") the reference. Mated: each finger's s against its own f; non-mated: its s
    against the f of every other finger (or ``impostors_per_probe`` of them drawn with
    ``seed``). Fingers without both impressions are left out."""
    groups = _by_subject(_verification_samples(dataset))
    takes = {sub: {s.impression: s for s in g} for sub, g in groups.items()}
    both = {sub: t for sub, t in takes.items() if 1 in t and 2 in t}
    if not both:
        raise ProtocolError(f"the f-vs-s protocol needs fingers with a first and a second impression; "
                            f"dataset {dataset.name} has none")
    rng = np.random.default_rng(seed)
    firsts = [(sub, t[1]) for sub, t in both.items()]
    pairs: list[Pair] = []
    for sub, t in both.items():
        pairs.append(Pair(t[2].id, t[1].id, True))
        others = [f for other, f in firsts if other != sub]
        if impostors_per_probe is not None and impostors_per_probe < len(others):
            others = [others[i] for i in np.sort(rng.choice(len(others), size=impostors_per_probe, replace=False))]
        pairs.extend(Pair(t[2].id, f.id, False) for f in others)
    return PairList("f-vs-s", pairs, {"impostors_per_probe": impostors_per_probe, "seed": seed})


PROTOCOLS: dict[str, tuple[Callable[..., PairList], str]] = {
    "fvc": (fvc, "FVC verification: genuine = impression vs later impressions of the same finger; "
                 "impostor = first impressions of different fingers (B set: 280 / 45)"),
    "all-pairs": (all_pairs, "FVC genuine pairs; impostor = every pair of impressions of "
                             "different fingers (B set: 280 / 2,880)"),
    "socofing": (socofing, "SOCOFing altered probes vs real references (genuine: same finger)"),
    "f-vs-s": (f_vs_s, "NIST SD 4: second impression vs first; non-mated: vs the first impression of every "
                       "other finger (2,000 / 3,998,000)"),
}


def build(name: str, dataset: Dataset, **params: Any) -> PairList:
    """Build the pair list of a registered protocol, or load one from a CSV file."""
    if name not in PROTOCOLS:
        path = Path(name)
        if path.suffix.lower() == ".csv" and path.is_file():
            return from_csv(path, dataset)
        import difflib

        close = difflib.get_close_matches(name, list(PROTOCOLS), n=2)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(PROTOCOLS)}"
        raise ProtocolError(f"unknown protocol '{name}' (nor an existing .csv pair file){hint}")
    fn, _ = PROTOCOLS[name]
    pl = fn(dataset, **params)
    pl.params = {**pl.params, **params}
    return pl


def from_csv(path: Path, dataset: Dataset) -> PairList:
    """Read a pair list with columns probe, reference and optionally genuine (0/1).

    Every id must name a sample of the dataset; a ``genuine`` column that disagrees with
    the samples' subjects is an error (it would silently corrupt every metric).
    """
    path = Path(path)
    subjects = {s.id: s.subject for s in dataset.samples}
    pairs: list[Pair] = []
    seen: set[tuple[str, str]] = set()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ProtocolError(f"{path}: cannot read the pair list ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark, as spreadsheets write, is not part of the header
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ProtocolError(f"{path}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                            f"save the pair list as UTF-8") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = reader.fieldnames
    except csv.Error as exc:
        raise ProtocolError(f"{path}:1: not a CSV header ({exc})") from None
    columns = [(h or "").strip().lower() for h in header or []]
    if not {"probe", "reference"} <= set(columns):
        found = ", ".join(repr(h) for h in header or []) or "nothing"
        raise ProtocolError(f"{path}: needs a header with columns probe,reference[,genuine]; found {found}")
    reader.fieldnames = columns
    rows = iter(reader)
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:
            raise ProtocolError(f"{path}:{reader.line_num}: not valid CSV ({exc})") from None
        line = reader.line_num
        p, r = (row.get("probe") or "").strip(), (row.get("reference") or "").strip()
        if not p or not r:
            missing = " and ".join(c for c, v in (("probe", p), ("reference", r)) if not v)
            raise ProtocolError(f"{path}:{line}: the {missing} id is empty (each row is probe,reference[,genuine])")
        for sid in (p, r):
            if sid not in subjects:
                raise ProtocolError(f"{path}:{line}: unknown sample id '{sid}' in dataset {dataset.name}")
        if p == r:
            raise ProtocolError(f"{path}:{line}: a sample compared with itself ('{p}')")
        if (p, r) in seen:
            raise ProtocolError(f"{path}:{line}: duplicate pair ({p}, {r})")
        seen.add((p, r))
        genuine = subjects[p] == subjects[r]
        given = (row.get("genuine") or "").strip()
        if given and given.lower() in ("1", "true", "0", "false"):
            if (given.lower() in ("1", "true")) != genuine:
                raise ProtocolError(
                    f"{path}:{line}: pair ({p}, {r}) is marked genuine={given} but the samples' "
                    f"subjects are {subjects[p]!r} and {subjects[r]!r}"
                )
        elif given:
            raise ProtocolError(f"{path}:{line}: genuine must be 0/1/true/false, got {given!r}")
        pairs.append(Pair(p, r, genuine))
    if not pairs:
        raise ProtocolError(f"{path}: no pairs")
    return PairList(f"csv:{path.name}", pairs, {"file": str(path)})
