"""Ground-truth minutiae files: the synthetic generator's own JSON, NBIS ``.xyt`` files
and ISO/IEC 19794-2:2005 records, all read into a :class:`~bench.template.Template` in
the ISO convention (origin top-left, y down, angle counter-clockwise in radians).

The generator writes, per image ``<finger>_<impression>.png``, the files
``groundtruth/<finger>_<impression>.json`` (minutiae, class, singular points, the
impression's parameters), ``.iso`` (the same minutiae as an ISO record) and
``.mask.png`` (the visible area where ground truth is complete: 255 inside).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.formats import iso19794_2, xyt
from bench.template import Template, TemplateError, make_minutiae

GROUNDTRUTH_FORMAT = "fingerbench-synthetic-groundtruth"
GROUNDTRUTH_VERSION = 1
GROUNDTRUTH_DIR = "groundtruth"
ANGLE_CONVENTION = (
    "radians, counter-clockwise from the x axis as seen on the image (y up), "
    "ISO/IEC 19794-2 direction; x, y in pixels from the top-left corner"
)


@dataclass
class GroundTruth:
    """Ground truth of one image: its minutiae, and what else is known about it."""

    template: Template
    fingerprint_class: str | None = None
    singular_points: list[dict[str, Any]] = field(default_factory=list)
    visible: np.ndarray | None = None  # bool, height x width; None = whole image
    meta: dict[str, Any] = field(default_factory=dict)


def groundtruth_paths(root: Path, sample_id: str) -> dict[str, Path]:
    """Where the ground-truth files of image ``sample_id`` ("<finger>_<impression>") lie."""
    base = Path(root) / GROUNDTRUTH_DIR
    return {
        "json": base / f"{sample_id}.json",
        "iso": base / f"{sample_id}.iso",
        "mask": base / f"{sample_id}.mask.png",
    }


def groundtruth_to_json(gt: GroundTruth, image: str) -> str:
    t = gt.template
    m = t.minutiae
    doc = {
        "format": GROUNDTRUTH_FORMAT,
        "format_version": GROUNDTRUTH_VERSION,
        "image": image,
        "width": int(t.width),
        "height": int(t.height),
        "dpi": float(t.dpi),
        "angle_convention": ANGLE_CONVENTION,
        "type_codes": {"1": "ridge ending", "2": "bifurcation"},
        "class": gt.fingerprint_class,
        "singular_points": gt.singular_points,
        "minutiae": [
            {
                "x": round(float(m["x"][i]), 3),
                "y": round(float(m["y"][i]), 3),
                "angle": round(float(m["angle"][i]), 5),
                "type": int(m["type"][i]),
                "quality": int(m["quality"][i]),
            }
            for i in range(m.size)
        ],
        **gt.meta,
    }
    # One line per minutia: readable, and a third of the size of a fully indented file.
    text = json.dumps({**doc, "minutiae": "@MINUTIAE@"}, indent=1)
    rows = ",\n".join("  " + json.dumps(m) for m in doc["minutiae"])
    return text.replace('"@MINUTIAE@"', "[\n" + rows + "\n ]" if rows else "[]") + "\n"


def read_groundtruth(path: str | Path, with_mask: bool = True) -> GroundTruth:
    """Read a generator ground-truth JSON file (and its ``.mask.png`` beside it)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
        if doc.get("format") != GROUNDTRUTH_FORMAT:
            raise ValueError(f"format is {doc.get('format')!r}, expected {GROUNDTRUTH_FORMAT!r}")
        ms = doc["minutiae"]
        minutiae = make_minutiae(
            [m["x"] for m in ms], [m["y"] for m in ms], [m["angle"] for m in ms],
            [m["type"] for m in ms], [m.get("quality", 0) for m in ms],
        )
        template = Template(minutiae, int(doc["width"]), int(doc["height"]), float(doc["dpi"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TemplateError(f"{path}: not a synthetic ground-truth file ({exc})") from exc
    visible = None
    mask_path = path.with_name(path.name[: -len(".json")] + ".mask.png") if path.name.endswith(".json") else None
    if with_mask and mask_path is not None and mask_path.is_file():
        from bench.datasets.base import read_grayscale

        visible = read_grayscale(mask_path, (template.width, template.height)) > 127
    known = {"format", "format_version", "image", "width", "height", "dpi", "angle_convention", "type_codes",
             "class", "singular_points", "minutiae"}
    meta = {k: v for k, v in doc.items() if k not in known}
    return GroundTruth(template, doc.get("class"), list(doc.get("singular_points") or []), visible, meta)


def read_xyt(path: str | Path, width: int, height: int, dpi: float = 500.0) -> Template:
    """Read an NBIS MINDTCT ``.xyt`` file (``x y theta [quality]`` per line, NIST
    convention: origin bottom-left, theta opposite to ISO) into ISO convention, through
    :func:`bench.formats.xyt.read`. ``width`` and ``height`` are those of the image the
    file describes. The minutia type is not in the file (type 0, "other")."""
    t = xyt.read(path, width=width, height=height, dpi=dpi, convention="nist")
    return Template(t.minutiae, t.width, t.height, t.dpi, extra={**t.extra, "source": str(path)})


def read_iso(path_or_bytes: str | Path | bytes, view: int = 0) -> Template:
    """Read one finger view (the first by default) of an ISO/IEC 19794-2 record (2005 or 2011)."""
    if isinstance(path_or_bytes, (bytes, bytearray)):
        data, source = bytes(path_or_bytes), "<bytes>"
    else:
        source = str(path_or_bytes)
        try:
            data = Path(path_or_bytes).read_bytes()
        except OSError as exc:
            raise TemplateError(f"{source}: cannot read ({exc.strerror or exc})") from exc
    record = iso19794_2.decode(data, source)  # FormatError (a TemplateError) names the source
    if not 0 <= view < len(record.views):
        raise TemplateError(f"{source}: has {len(record.views)} finger view(s), view {view} was asked for")
    return record.views[view].template
