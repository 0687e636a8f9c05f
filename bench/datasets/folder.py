"""A generic folder of fingerprint images whose names give subject and impression.

Parameters: ``pattern`` (a regex with named groups ``subject`` and ``impression``, matched
case-insensitively against the file name, or against the path relative to the root with
``/`` separators when the pattern itself contains ``/``), ``dpi`` (required, 50-5000),
``recursive`` (walk sub-folders), ``image_size`` ((width, height) every image must have).
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from bench.datasets.base import Dataset, DatasetError, DatasetInfo, Problem, Sample
from bench.datasets.imagecheck import check_level
from bench.datasets.scan import as_bool, as_size, describe_names, list_files, validated

DEFAULT_PATTERN = r"^(?P<subject>[^_]+)_(?P<impression>\d+)\.(tif|tiff|png|bmp|jpg|jpeg|pgm)$"
DPI_RANGE = (50.0, 5000.0)

INFO = DatasetInfo(
    name="folder",
    title="Generic folder of images",
    sensor="unknown",
    dpi=0.0,  # set from the required dpi parameter
    image_size=None,
    fingers=None,
    impressions=None,
    licence="That of the images.",
    citation="",
    url="",
    protocols=("all-pairs", "fvc"),
    default_subdir="",
    notes="Subject and impression come from the file names (parameter 'pattern'); the resolution "
    "must be given (parameter 'dpi').",
)


def _check_dpi(dpi: object) -> float:
    if dpi is None:
        raise DatasetError(
            "the folder dataset needs its resolution: pass dpi=<dots per inch> "
            f"(a number from {DPI_RANGE[0]:g} to {DPI_RANGE[1]:g}, e.g. dpi=500)"
        )
    try:
        if isinstance(dpi, bool):
            raise ValueError
        value = float(dpi)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise DatasetError(f"folder dataset: dpi must be a number, not {dpi!r}") from None
    if not DPI_RANGE[0] <= value <= DPI_RANGE[1]:
        raise DatasetError(
            f"folder dataset: dpi={value:g} is outside {DPI_RANGE[0]:g}-{DPI_RANGE[1]:g} dots per inch; "
            "give the scanner's resolution in dots per inch"
        )
    return value


def load_folder(
    info: DatasetInfo,
    root: Path,
    *,
    dpi: float | None = None,
    pattern: str = DEFAULT_PATTERN,
    recursive: bool = False,
    image_size: tuple[int, int] | None = None,
    validate: str = "full",
) -> Dataset:
    """Open a folder of images named by ``pattern``."""
    dpi_value = _check_dpi(dpi)
    validate = check_level(validate)
    try:
        regex = re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise DatasetError(f"folder dataset: invalid pattern {pattern!r}: {exc}") from exc
    missing_groups = {"subject", "impression"} - set(regex.groupindex)
    if missing_groups:
        raise DatasetError(
            f"folder dataset: the pattern needs named groups 'subject' and 'impression' "
            f"(missing: {', '.join(sorted(missing_groups))}), e.g. {DEFAULT_PATTERN}"
        )
    size = as_size(image_size, "image_size")
    recursive = as_bool(recursive, "recursive")
    on_path = "/" in pattern

    problems: list[Problem] = []
    by_id: dict[str, Sample] = {}
    files = list_files(root, recursive=recursive, problems=problems)
    for path in files:
        text = path.relative_to(root).as_posix() if on_path else path.name
        m = regex.match(text)
        if not m:
            problems.append(Problem("extra", str(path), f"{text}: does not match the pattern; ignored"))
            continue
        subject, impression_text = m["subject"], m["impression"]
        if not subject or impression_text is None or not impression_text.isdigit():
            problems.append(
                Problem("extra", str(path), f"{text}: impression {impression_text!r} is not a number; ignored")
            )
            continue
        impression = int(impression_text)
        sid = f"{subject}_{impression}"
        if sid in by_id:
            problems.append(
                Problem("duplicate", str(path), f"{text}: a second file for sample {sid}; "
                        f"{by_id[sid].path.relative_to(root).as_posix()} is used")
            )
            continue
        by_id[sid] = Sample(sid, subject, impression, path, dpi_value)
    if not by_id:
        raise DatasetError(
            f"no file in {root} matches the pattern {pattern}"
            + (f" (found: {describe_names(files)})" if files else "")
            + ("" if recursive else "; pass recursive=True to look in sub-folders")
        )
    samples = sorted(by_id.values(), key=lambda s: (_natural(s.subject), s.impression))
    info = replace(info, dpi=dpi_value, image_size=size, title=f"Folder {root.name}")
    samples = validated(samples, problems, size, validate)
    params = {
        "dpi": dpi_value, "pattern": pattern, "recursive": recursive, "image_size": size, "validate": validate,
    }
    return Dataset(info=info, root=root, samples=samples, problems=problems, params=params)


def _natural(text: str) -> tuple:
    """Sort key putting "2" before "10"."""
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", text) if t)
