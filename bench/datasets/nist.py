"""NIST Special Databases 4 and 302.

Both are found by walking the root recursively, so the root may be the folder of the
unpacked archive or any folder above the image folders. Image files that do not fit the
layout are reported as ``extra``; other files (text, PDF, checksum lists) are ignored.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Callable

from bench import references
from bench.datasets.base import Dataset, DatasetError, DatasetInfo, Problem, Sample
from bench.datasets.imagecheck import check_level
from bench.datasets.scan import as_list, describe_names, is_image_name, list_files, validated

log = logging.getLogger(__name__)

# ---------------------------------------------------------------- SD 4

SD4_NAME = re.compile(r"^(?P<take>[fs])(?P<number>\d{4})_(?P<position>\d{2})\.(?:png|tif|tiff|bmp)$", re.IGNORECASE)

SD4_INFO = DatasetInfo(
    name="nist-sd4",
    title="NIST Special Database 4 (8-bit gray scale images of fingerprint image groups, FIGS)",
    sensor="inked rolled impressions on cards, scanned",
    dpi=500.0,
    image_size=(512, 512),
    fingers=2000,
    impressions=2,
    licence="Published by NIST as Standard Reference Data under NIST's terms; NIST may no longer "
    "distribute it (check its page). Use a copy under the terms it was obtained with; no redistribution.",
    citation="C. I. Watson, C. L. Wilson, \"NIST Special Database 4: Fingerprint Database\", "
    "National Institute of Standards and Technology, 1992.",
    url="https://www.nist.gov/srd/nist-special-database-4",
    bibtex=references.NIST_SD4,
    protocols=("f-vs-s", "all-pairs", "identification"),
    default_subdir="NISTSpecialDatabase4GrayScaleImagesofFIGS/sd04/png_txt",
    notes="2,000 fingers x 2 rolled impressions (f = first, s = second), 512x512 pixels at 500 dpi, "
    "8-bit gray; the five classes (A, L, R, T, W) 400 pairs each. Files png_txt/figs_0..figs_7/"
    "[fs]NNNN_PP.png, PP = finger position, with a .txt giving Gender, Class and History.",
)


def _read_sd4_txt(path: Path) -> dict[str, str]:
    """Gender/Class/History fields of an SD4 side-car text file (empty dict if absent)."""
    try:
        text = path.read_text(encoding="latin-1")
    except OSError:
        return {}
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("gender", "class", "history"):
            out[key.strip().lower()] = value.strip()
    return out


def load_sd4(info: DatasetInfo, root: Path, *, validate: str = "header") -> Dataset:
    """Open NIST SD4. ``validate`` defaults to "header" (4,000 images of 512x512)."""
    validate = check_level(validate)
    problems: list[Problem] = []
    found: dict[tuple[str, str], Path] = {}
    for path in list_files(root, recursive=True, problems=problems):
        m = SD4_NAME.match(path.name)
        if not m:
            if is_image_name(path.name):
                problems.append(Problem("extra", str(path), f"{path.name}: not named [fs]NNNN_PP.png; ignored"))
            continue
        key = (m["number"], m["take"].lower())
        if key in found:
            problems.append(
                Problem("duplicate", str(path), f"{path.name}: a second file for {m['take']}{m['number']}; "
                        f"{found[key]} is used")
            )
            continue
        found[key] = path
    if not found:
        raise DatasetError(f"no file named [fs]NNNN_PP.png (NIST SD4 layout) under {root}")

    samples: list[Sample] = []
    for number in sorted({n for n, _ in found}):
        for impression, take in ((1, "f"), (2, "s")):
            path = found.get((number, take))
            if path is None:
                other = found[(number, "s" if take == "f" else "f")]
                expected = other.with_name(take + other.name[1:])
                problems.append(
                    Problem("missing", str(expected), f"{expected.name}: the mate of {other.name} is absent")
                )
                samples.append(Sample(expected.stem, number, impression, None, info.dpi, {"take": take}))
                continue
            m = SD4_NAME.match(path.name)
            attributes: dict[str, Any] = {
                "take": take, "finger_position": int(m["position"]), "folder": path.parent.name,
            }
            attributes.update(_read_sd4_txt(path.with_suffix(".txt")))
            samples.append(Sample(path.stem, number, impression, path, info.dpi, attributes))
    samples = validated(samples, problems, info.image_size, validate)
    return Dataset(info=info, root=root, samples=samples, problems=problems, params={"validate": validate})


# ---------------------------------------------------------------- SD 302

#: SUBJECT_DEVICE[_RESOLUTION]_CAPTURE_FRGP.png (NIST TN 2007); e.g. 00002302_U_500_roll_01.png,
#: 00002500_A_roll_01.png.
SD302_PATTERN = (
    r"^(?P<subject>\d{8})_(?P<device>[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:_(?P<resolution>\d{3,4}))?"
    r"_(?P<capture>[a-z]+(?:-[a-z]+)*)_(?P<finger>\d{2})\.png$"
)
#: Finger positions of single-finger images (ANSI/NIST-ITL FGP): 1-10, plain thumbs 11, 12.
SINGLE_FINGER_POSITIONS = tuple(range(1, 13))
_SAME_FINGER = {11: 1, 12: 6}  # plain right/left thumb are fingers 1 and 6

SD302_INFO = DatasetInfo(
    name="nist-sd302",
    title="NIST Special Database 302 (Nail to Nail Fingerprint Challenge)",
    sensor="various: the N2N challenge devices and baseline livescan devices (device letter in file names)",
    dpi=500.0,
    image_size=None,
    fingers=None,
    impressions=None,
    licence="Free download from NIST; use under NIST's terms for the database (see its page).",
    citation="G. Fiumara, P. Flanagan, M. Schwarz, E. Tabassi, C. Boehnen, \"NIST Special Database 302: "
    "Nail to Nail Fingerprint Challenge\", NIST Technical Note 2007, 2019, doi:10.6028/NIST.TN.2007.",
    url="https://www.nist.gov/itl/iad/image-group/nist-special-database-302",
    bibtex=references.NIST_SD302,
    protocols=("all-pairs", "identification"),
    default_subdir="sd302",
    notes="Exemplar images named SUBJECT_DEVICE[_RESOLUTION]_CAPTURE_FRGP.png; resolution taken from "
    "the name (500 or 1000 ppi), else 500. Subject = person + finger position (plain thumbs 11/12 "
    "folded into 01/06). Multi-finger images (FRGP 13-15) and palms are skipped. Image sizes vary.",
)


def load_sd302(
    info: DatasetInfo,
    root: Path,
    *,
    pattern: str = SD302_PATTERN,
    default_dpi: float = 500.0,
    fingers: tuple[int, ...] | list[int] = SINGLE_FINGER_POSITIONS,
    captures: tuple[str, ...] | list[str] | None = None,
    devices: tuple[str, ...] | list[str] | None = None,
    validate: str = "header",
) -> Dataset:
    """Open NIST SD302 exemplars (any subset of 302a-302h laid out as published).

    ``pattern``: regex with groups ``subject`` and ``finger`` (``device``, ``resolution``,
    ``capture`` optional), matched case-insensitively against file names. ``fingers``,
    ``captures`` and ``devices`` filter what is kept (skipped files are not problems).
    """
    validate = check_level(validate)
    try:
        regex = re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise DatasetError(f"nist-sd302: invalid pattern {pattern!r}: {exc}") from exc
    if not {"subject", "finger"} <= set(regex.groupindex):
        raise DatasetError("nist-sd302: the pattern needs named groups 'subject' and 'finger'")
    try:
        keep_fingers = {int(f) for f in as_list(fingers, "fingers") or ()}
        default_dpi = float(default_dpi)
    except ValueError:
        raise ValueError(
            f"fingers must be finger positions and default_dpi a number ({fingers!r}, {default_dpi!r})"
        ) from None
    keep_captures = {c.lower() for c in as_list(captures, "captures") or ()} or None
    keep_devices = {d.upper() for d in as_list(devices, "devices") or ()} or None

    problems: list[Problem] = []
    entries: dict[str, tuple[tuple, Path, dict[str, Any]]] = {}
    skipped = 0
    for path in list_files(root, recursive=True, problems=problems):
        m = regex.match(path.name)
        if not m:
            if is_image_name(path.name):
                problems.append(
                    Problem(
                        "extra", str(path),
                        f"{path.name}: not named SUBJECT_DEVICE_RESOLUTION_CAPTURE_FRGP.png; ignored",
                    )
                )
            continue
        g = m.groupdict()
        frgp = int(g["finger"])
        device, capture = (g.get("device") or ""), (g.get("capture") or "")
        if (
            frgp not in keep_fingers
            or (keep_captures is not None and capture.lower() not in keep_captures)
            or (keep_devices is not None and device.upper() not in keep_devices)
        ):
            skipped += 1
            continue
        resolution = g.get("resolution")
        dpi = float(resolution) if resolution else default_dpi
        finger = _SAME_FINGER.get(frgp, frgp)
        sid = path.stem
        if sid in entries:
            problems.append(
                Problem("duplicate", str(path), f"{path.name}: a second file named {sid}; {entries[sid][1]} is used")
            )
            continue
        attributes = {
            "person": g["subject"],
            "device": device or None,
            "resolution": int(resolution) if resolution else None,
            "capture": capture or None,
            "frgp": frgp,
            "finger": finger,
            "dpi": dpi,
            "folder": str(path.parent.relative_to(root)),
        }
        sort_key = (g["subject"], finger, device, resolution or "", capture, frgp, path.name)
        entries[sid] = (sort_key, path, attributes)
    if skipped:
        log.info("nist-sd302: %d files skipped by the finger/capture/device filters", skipped)
    if not entries:
        extra = [Path(p.path) for p in problems if p.kind == "extra"]
        raise DatasetError(
            f"no NIST SD302 exemplar image (SUBJECT_DEVICE_RESOLUTION_CAPTURE_FRGP.png) under {root}"
            + (f"; found other images: {describe_names(extra)}" if extra else "")
            + (f"; {skipped} files were filtered out" if skipped else "")
        )

    samples: list[Sample] = []
    counters: dict[str, int] = {}
    for _key, path, attributes in sorted(entries.values(), key=lambda e: e[0]):
        subject = f"{attributes['person']}_{attributes['finger']:02d}"
        counters[subject] = counters.get(subject, 0) + 1
        samples.append(Sample(path.stem, subject, counters[subject], path, attributes["dpi"], attributes))
    samples = validated(samples, problems, None, validate)
    params = {
        "pattern": pattern,
        "default_dpi": default_dpi,
        "fingers": sorted(keep_fingers),
        "captures": sorted(keep_captures) if keep_captures else None,
        "devices": sorted(keep_devices) if keep_devices else None,
        "validate": validate,
    }
    return Dataset(info=info, root=root, samples=samples, problems=problems, params=params)


def registrations() -> list[tuple[DatasetInfo, Callable[..., Dataset], tuple[str, ...]]]:
    return [
        (SD4_INFO, load_sd4, ("sd04/png_txt", "sd04", "nist-sd4")),
        (SD302_INFO, load_sd302, ("nist-sd302",)),
    ]
