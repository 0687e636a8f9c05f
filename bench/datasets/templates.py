"""A dataset of minutiae template files instead of images (FVC-onGoing FMISO-like).

A matcher can be benchmarked on templates that someone else made (a commercial
extractor's ISO records, NBIS ``.xyt`` files): each sample is a template file, marked
with ``attributes["template"]`` (its format), and the pass-through ``template`` extractor
(:class:`bench.formats.plugin.TemplateFileExtractor`) reads it where an image extractor
would decode an image. Protocols work unchanged (subjects and impressions come from the
file names, FVC style by default: ``<finger>_<impression>.<ext>``).

Parameters: ``pattern`` (regex with named groups ``subject`` and ``impression``, matched
case-insensitively against file names), ``format`` (``None``: detected per file), ``dpi``
(used for ``.xyt`` files, which do not hold a resolution; records hold their own),
``xyt_convention``, ``width`` and ``height`` (for ``.xyt`` files), ``validate`` (parse
every file when opening: malformed ones are reported as ``unreadable`` problems naming the
file and the error, and kept, marked, so protocols keep their pair counts).
"""

from __future__ import annotations

import re
from pathlib import Path

from bench.datasets.base import Dataset, DatasetError, DatasetInfo, Problem, Sample
from bench.datasets.scan import as_bool, describe_names, list_files

DEFAULT_PATTERN = r"^(?P<subject>\d+)_(?P<impression>\d+)\.(iso|ist|ansi|fmr|xyt|min|bin)$"

INFO = DatasetInfo(
    name="templates",
    title="Folder of minutiae template files (ISO/IEC 19794-2, ANSI INCITS 378, NBIS .xyt)",
    sensor="unknown (templates)",
    dpi=500.0,
    image_size=None,
    fingers=None,
    impressions=None,
    licence="That of the templates.",
    citation="",
    url="",
    protocols=("fvc", "all-pairs"),
    default_subdir="",
    notes="Samples are template files, not images: benchmark matchers with the 'template' extractor "
    "(-e template). Subject and impression come from the file names (parameter 'pattern').",
)


def load_templates(
    info: DatasetInfo,
    root: Path,
    *,
    pattern: str = DEFAULT_PATTERN,
    format: str | None = None,
    dpi: float = 500.0,
    xyt_convention: str = "nist",
    width: int | None = None,
    height: int | None = None,
    validate: bool | str = True,
) -> Dataset:
    """Scan ``root`` for template files named by ``pattern``."""
    from bench.formats import FormatError, canonical_format, read_template

    try:
        regex = re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise DatasetError(f"templates: pattern {pattern!r} is not a regular expression: {exc}") from None
    if not {"subject", "impression"} <= set(regex.groupindex):
        raise DatasetError("templates: pattern needs named groups 'subject' and 'impression'")
    fmt = canonical_format(format) if format else None
    try:
        dpi = float(dpi)
    except (TypeError, ValueError):
        raise DatasetError(f"templates: dpi must be a number, not {dpi!r}") from None
    check = as_bool(validate, "validate")
    # what .xyt files do not hold, handed to the 'template' extractor with each sample
    options = {k: v for k, v in (("width", width), ("height", height), ("xyt_convention", xyt_convention))
               if v is not None}
    samples: list[Sample] = []
    problems: list[Problem] = []
    seen: dict[tuple[str, int], Path] = {}
    files = list_files(root, problems=problems)
    for path in files:
        m = regex.match(path.name)
        if not m:
            problems.append(Problem("extra", str(path), "file name does not match the template pattern"))
            continue
        subject, impression = m.group("subject"), int(m.group("impression"))
        if (subject, impression) in seen:
            problems.append(Problem("duplicate", str(path), f"same sample as {seen[(subject, impression)].name}"))
            continue
        seen[(subject, impression)] = path
        attributes: dict[str, object] = {"template": fmt or "auto", "file": path.name}
        if options:
            attributes["template_options"] = options
        if check:
            try:
                t = read_template(path, fmt, width=width, height=height, dpi=None,
                                  xyt_convention=xyt_convention)
                attributes["template"] = t.native_format
                attributes["n_minutiae"] = len(t)
            except (FormatError, ValueError) as exc:
                problems.append(Problem("unreadable", str(path), str(exc)))
                attributes["problem"] = "unreadable"
        samples.append(Sample(f"{subject}_{impression}", subject, impression, path, dpi, attributes))
    if not samples:
        raise DatasetError(f"templates: no file matching {pattern!r} in {root}; found {describe_names(files)}")
    samples.sort(key=lambda s: (_natural(s.subject), s.impression))
    params = {"pattern": pattern, "format": fmt, "dpi": dpi, "xyt_convention": xyt_convention,
              "width": width, "height": height, "validate": check}
    return Dataset(info=info, root=root, samples=samples, problems=problems, params=params,
                   reader=_no_images)


def _natural(text: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text))


def _no_images(sample: Sample):
    from bench.datasets.base import ImageError

    raise ImageError(f"{sample.path}: a template file, not an image (use the 'template' extractor)")


def registrations() -> list[tuple[DatasetInfo, object, tuple[str, ...]]]:
    """For :mod:`bench.datasets.registry` (built-in) or the ``fingerbench.datasets`` entry point."""
    return [(INFO, load_templates, ())]


def datasets() -> list[tuple[DatasetInfo, object]]:
    """Entry-point form: ``templates = "bench.datasets.templates:datasets"``."""
    return [(INFO, load_templates)]
