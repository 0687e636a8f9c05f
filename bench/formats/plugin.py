"""The pass-through "template" extractor: benchmarks matchers on template files.

A dataset of template files (:mod:`bench.datasets.templates`) marks each sample with
``attributes["template"]`` (the file's format). Its "extraction" reads the file: no
image is decoded and no minutiae are found, so a matcher is benchmarked on templates
that another (possibly commercial) extractor made, as in FVC-onGoing's FMISO tracks.

The runner calls :meth:`TemplateFileExtractor.extract_file` with the sample's path
instead of decoding an image when the extractor has that method (see docs/ecosystem.md
for the change the runner needs); :meth:`extract` refuses images with a clear message.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.formats import FormatError, canonical_format, read_template
from bench.plugins import FailureToEnrol
from bench.template import MINUTIAE_FORMAT, Template


DEFAULT_XYT_CONVENTION = "nist"


class TemplateFileExtractor:
    """Reads a template file (ISO/IEC 19794-2, ANSI INCITS 378, NBIS .xyt) as the template.

    Parameters:
        format: the files' format (``None``: detected from each file's bytes).
        view: which finger view of a multi-view record.
        xyt_convention: ``"nist"`` or ``"m1"`` for ``.xyt`` files.
        width, height: image size for ``.xyt`` files (which do not hold it).
        dpi: resolution to use instead of the one in the record (``None``: the record's,
            or the dataset's for ``.xyt`` files).

    A malformed file is a failure to enrol whose message names the file and the problem.
    """

    version = "1"
    template_format = MINUTIAE_FORMAT

    def __init__(
        self,
        format: str | None = None,
        view: int = 0,
        xyt_convention: str = DEFAULT_XYT_CONVENTION,
        width: int | None = None,
        height: int | None = None,
        dpi: float | None = None,
    ) -> None:
        self.format = format
        self.view = view
        self.xyt_convention = xyt_convention
        self.width = width
        self.height = height
        self.dpi = dpi

    def extract_file(self, path: str | Path, dpi: float, *, width: int | None = None, height: int | None = None,
                     xyt_convention: str | None = None) -> Template:
        """The template held in ``path``. ``dpi``, ``width``, ``height`` and
        ``xyt_convention`` are what the dataset says of its ``.xyt`` files (the runner
        hands them over); this extractor's own parameters, when given, take precedence."""
        fmt = canonical_format(self.format) if self.format else None
        convention = self.xyt_convention
        if xyt_convention is not None and self.xyt_convention == DEFAULT_XYT_CONVENTION:
            convention = xyt_convention
        try:
            t = read_template(path, fmt, view=int(self.view),
                              width=self.width if self.width is not None else width,
                              height=self.height if self.height is not None else height,
                              dpi=self.dpi, xyt_convention=convention)
        except FormatError as exc:
            raise FailureToEnrol(str(exc)) from exc
        if t.extra.get("format") == "xyt" and self.dpi is None and dpi:
            t = Template(t.minutiae, t.width, t.height, float(dpi), t.native, t.native_format, t.extra)
        if len(t) == 0:
            raise FailureToEnrol(f"{path}: the template holds no minutia")
        return t

    def extract(self, image: np.ndarray, dpi: float) -> Template:
        raise FailureToEnrol(
            "the 'template' extractor reads template files, not images: use it with a dataset of "
            "template files (bench.datasets.templates), whose samples the runner hands to extract_file()"
        )
