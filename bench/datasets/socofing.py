"""SOCOFing (Sokoto Coventry Fingerprint Dataset).

The root is the folder holding ``Real/`` and ``Altered/Altered-{Easy,Medium,Hard}/``.
File names are ``<person>__<M|F>_<Left|Right>_<finger>_finger.BMP``; altered images add
``_CR`` (central rotation), ``_Obl`` (obliteration) or ``_Zcut`` before the extension.
Names are parsed leniently (case, one or two underscores, a missing ``_finger``);
anything else is reported as ``extra``.

Design for the altered sets: a finger (``<person>_<Left|Right>_<finger>``) is the subject.
An altered dataset holds the altered images (``attributes["role"] == "probe"``,
``alteration`` set, impression 2/3/4 for CR/Obl/Zcut) *and* every real image
(``role == "reference"``, ``alteration`` None, impression 1). The ``socofing`` protocol,
:func:`bench.protocols.socofing`, compares each probe with the real image of the same finger (mated)
and with real images of other fingers (non-mated); probes are never compared with each
other. An altered image whose real image is absent yields a ``missing`` problem and a
reference sample with ``path=None``, so the mated pair is still counted.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Callable

from bench import references
from bench.datasets.base import Dataset, DatasetError, DatasetInfo, Problem, Sample
from bench.datasets.imagecheck import check_level
from bench.datasets.scan import find_subdir, list_files, validated

log = logging.getLogger(__name__)

LEVELS = ("easy", "medium", "hard")
ALTERATIONS = {"cr": "CR", "obl": "Obl", "zcut": "Zcut"}
_IMPRESSION = {None: 1, "CR": 2, "Obl": 3, "Zcut": 4}
_NAME = re.compile(
    r"^\s*(?P<person>\d+)\s*_{1,2}\s*(?P<gender>[MF])_(?P<hand>left|right)_"
    r"(?P<finger>thumb|index|middle|ring|little)(?:_finger)?"
    r"(?:_(?P<alteration>cr|obl|zcut))?\s*\.(?:bmp|png|tif|tiff)$",
    re.IGNORECASE,
)

URL = "https://www.kaggle.com/datasets/ruizgara/socofing"
CITATION = (
    "Y. I. Shehu, A. Ruiz-Garcia, V. Palade, A. James, \"Sokoto Coventry Fingerprint Dataset\", "
    "arXiv:1807.10609, 2018."
)
LICENCE = "Non-commercial research use only (see the terms on the download page); no redistribution."
NOTES = (
    "600 African subjects x 10 fingers = 6,000 real images, one impression per finger; altered "
    "copies made with the STRANGE toolbox: Easy 17,931, Medium 17,067, Hard 14,272. Images are "
    "mostly 96x103 pixels (a few 241x298). Declared 500 dpi; the ridge spacing suggests about "
    "200 dpi in practice, so extractors tuned for 500 dpi may need the dpi overridden."
)


def _info(level: str | None) -> DatasetInfo:
    name = "socofing-real" if level is None else f"socofing-altered-{level}"
    title = "SOCOFing real" if level is None else f"SOCOFing altered ({level.capitalize()}) vs real"
    return DatasetInfo(
        name=name,
        title=title,
        sensor="SecuGen optical scanners (Hamster Plus HSDU03P, SDU03P)",
        dpi=500.0,
        image_size=None,
        fingers=6000,
        impressions=1 if level is None else None,
        licence=LICENCE,
        citation=CITATION,
        bibtex=references.SOCOFING,
        url=URL,
        protocols=() if level is None else ("socofing",),
        default_subdir="SOCOFing",
        notes=NOTES
        + (
            " socofing-real has one impression per finger, so it supports no mated comparison on "
            "its own: it is the reference gallery of the altered sets."
            if level is None
            else " Samples: the altered images (role 'probe') and all real images (role 'reference')."
        ),
    )


def _level_dir(root: Path, level: str) -> Path:
    for rel in (f"Altered/Altered-{level}", f"Altered-{level}", f"Altered/{level}"):
        found = find_subdir(root, rel)
        if found is not None:
            return found
    raise DatasetError(
        f"no folder Altered/Altered-{level.capitalize()} in {root} (the SOCOFing root must hold "
        "Real/ and Altered/Altered-Easy, -Medium, -Hard)"
    )


def _parse(path: Path) -> dict | None:
    m = _NAME.match(path.name)
    if not m:
        return None
    alteration = m["alteration"]
    return {
        "person": str(int(m["person"])),
        "gender": m["gender"].upper(),
        "hand": m["hand"].capitalize(),
        "finger": m["finger"].lower(),
        "alteration": ALTERATIONS[alteration.lower()] if alteration else None,
    }


def _misplaced(fields: dict | None, altered: bool) -> str | None:
    """Why a file does not belong in its folder, or None if it does."""
    if fields is None:
        return "not named <person>__<M|F>_<Left|Right>_<finger>_finger[_CR|_Obl|_Zcut].BMP"
    if fields["alteration"] is not None and not altered:
        return "an altered image in the Real folder"
    if fields["alteration"] is None and altered:
        return "a real image among the altered ones"
    return None


def _scan(
    folder: Path, altered: bool, level: str | None, dpi: float, problems: list[Problem], reference_only: bool = False
) -> list[Sample]:
    by_id: dict[str, Sample] = {}
    for path in list_files(folder, problems=problems):
        fields = _parse(path)
        why = _misplaced(fields, altered)
        if why is not None:
            problems.append(Problem("extra", str(path), f"{path.name}: {why}; ignored"))
            continue
        subject = f"{fields['person']}_{fields['hand']}_{fields['finger']}"
        sid = f"{subject}_{fields['alteration'] or 'Real'}"
        if sid in by_id:
            problems.append(
                Problem("duplicate", str(path), f"{path.name}: a second file for {sid}; {by_id[sid].path.name} is used")
            )
            continue
        attributes = {**fields, "level": level, "role": "probe" if altered else "reference", "file": path.name}
        if not altered and reference_only:
            attributes["reference_only"] = True
        by_id[sid] = Sample(sid, subject, _IMPRESSION[fields["alteration"]], path, dpi, attributes)
    return list(by_id.values())


def _absent_references(
    probes: list[Sample], references: list[Sample], real_dir: Path, dpi: float, problems: list[Problem]
) -> list[Sample]:
    """Reference samples (path None) for the probes whose real image is absent, each
    reported as ``missing``; logs probes whose gender differs from their real image."""
    known = {s.subject: s for s in references}
    added: list[Sample] = []
    mismatched = 0
    for probe in probes:
        a = probe.attributes
        ref = known.get(probe.subject)
        if ref is not None:
            mismatched += ref.attributes["gender"] != a["gender"]
            continue
        name = f"{a['person']}__{a['gender']}_{a['hand']}_{a['finger']}_finger.BMP"
        problems.append(
            Problem("missing", str(real_dir / name),
                    f"{name}: the real image of {probe.subject} (mate of {a['file']}) is absent")
        )
        attributes = {k: a[k] for k in ("person", "gender", "hand", "finger")}
        attributes.update(alteration=None, level=None, role="reference", file=name, reference_only=True)
        known[probe.subject] = Sample(f"{probe.subject}_Real", probe.subject, 1, None, dpi, attributes)
        added.append(known[probe.subject])
    if mismatched:
        log.warning("%d altered images name another gender than their real image", mismatched)
    return added


def make_loader(level: str | None) -> Callable[..., Dataset]:
    def load(info: DatasetInfo, root: Path, *, validate: str = "full") -> Dataset:
        """Open SOCOFing (real, or one altered level with the real references)."""
        validate = check_level(validate)
        problems: list[Problem] = []
        real_dir = find_subdir(root, "Real")
        if real_dir is None:
            found = ", ".join(sorted(p.name for p in root.iterdir())[:8])
            raise DatasetError(
                f"no folder Real/ in {root}: the SOCOFing root must hold Real/ and Altered/ (found: {found})"
            )
        samples = _scan(real_dir, False, None, info.dpi, problems, reference_only=level is not None)
        if level is not None:
            level_dir = _level_dir(root, level)
            probes = _scan(level_dir, True, level, info.dpi, problems)
            if not probes:
                raise DatasetError(f"no altered image found in {level_dir}")
            samples += _absent_references(probes, samples, real_dir, info.dpi, problems)
            samples += probes
        elif not samples:
            raise DatasetError(f"no SOCOFing real image found in {real_dir}")
        samples = validated(samples, problems, None, validate)
        return Dataset(info=info, root=root, samples=samples, problems=problems, params={"validate": validate})

    load.__name__ = "load_socofing_" + (level or "real")
    return load


def registrations() -> list[tuple[DatasetInfo, Callable[..., Dataset], tuple[str, ...]]]:
    return [(_info(level), make_loader(level), ("socofing-subset",)) for level in (None, *LEVELS)]
