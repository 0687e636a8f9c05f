"""BOZORTH3 minutiae matching through nbis-py."""

from __future__ import annotations

import threading
import weakref
from typing import Any, Sequence

import numpy as np

from bench import references
from bench.plugins import ComparisonFailed
from bench.template import Template
from extractors.nbis import _lib, native

#: NBIS's limits: BOZORTH3 scores 0 when either side has fewer minutiae than this ...
MIN_COMPUTABLE_MINUTIAE = 10
#: ... and holds at most this many (the default of its ``-n`` option is 150).
MAX_MINUTIAE = 200


class Bozorth3Matcher:
    """BOZORTH3 through nbis-py; the score is BOZORTH3's integer (higher is more similar).

    Parameters:
        max_minutiae: at most this many minutiae of each template are compared, those
            of highest quality (BOZORTH3's ``-n``; NBIS default 150, at most 200). nbis-py
            itself does not prune when comparing, so the pruning is done here, as NBIS's
            BOZORTH3 loader does it.

    Templates of nbis-py's format are compared from their native bytes; any other
    template is converted from its standard minutiae into the same bytes (positions
    rounded to pixels, angles to MINDTCT's 32 directions, sorted by x then y as
    BOZORTH3 requires), which for templates made by :class:`MindtctExtractor` gives
    exactly the scores of the native bytes. Positions are used in pixels as they are:
    BOZORTH3's tolerances assume about 500 ppi. A template with fewer than 10 minutiae
    scores 0, as in NBIS (and, by nbis-py's source, a comparison that overflows
    BOZORTH3's internal list also gives 0). In nbis-py 0.1.3 the score was symmetric on
    every pair tried (all 6,400 ordered pairs of FVC2002 DB1_B).

    Loaded templates are cached per Template object (weakly), so ``compare_many`` and
    repeated comparisons read each template once.
    """

    version = _lib.nbis_version()
    bibtex = references.NBIS
    higher_is_better = True
    accepted_formats = (native.NATIVE_FORMAT, "minutiae")

    def __init__(self, max_minutiae: int = 150) -> None:
        self.max_minutiae = max_minutiae

    @staticmethod
    def check_available() -> str:
        return _lib.unavailable_reason()

    def warm_up(self) -> None:
        """Create nbis-py's template reader (it loads the NFIQ2 model) before timing."""
        _lib.template_loader()

    def compare(self, probe: Template, reference: Template) -> float:
        p = self._loaded(probe)
        r = self._loaded(reference)
        if p is None or r is None:
            return 0.0
        return float(p.compare(r))

    def compare_many(self, probe: Template, gallery: Sequence[Template]) -> np.ndarray:
        """One probe against many: the probe is read once (a loop over BOZORTH3 pairs, so
        not declared ``batched``)."""
        p = self._loaded(probe)
        scores = np.zeros(len(gallery), dtype=np.float64)
        for i, reference in enumerate(gallery):
            r = self._loaded(reference)
            if p is not None and r is not None:
                scores[i] = p.compare(r)
        return scores

    def prepare(self, template: Template) -> Any:
        """nbis-py's form of ``template`` (cached with it): the conversion is done before,
        not inside, the timed comparisons."""
        return self._loaded(template)

    # -- conversion ----------------------------------------------------------------
    def native_bytes(self, template: Template) -> bytes:
        """The nbis-py bytes this matcher compares for ``template``."""
        limit = self._limit()
        m = template.minutiae
        if template.native_format == native.NATIVE_FORMAT and template.native is not None and len(m) <= limit:
            return template.native
        order = native.bozorth_order(m, limit)
        return native.encode(m[order], template.width, template.height)

    def _limit(self) -> int:
        n = self.max_minutiae
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not (
            MIN_COMPUTABLE_MINUTIAE <= n <= MAX_MINUTIAE
        ):
            raise ValueError(
                f"max_minutiae must be an integer from {MIN_COMPUTABLE_MINUTIAE} to {MAX_MINUTIAE}, "
                f"got {n!r}"
            )
        return int(n)

    def _loaded(self, template: Template) -> Any:
        """nbis-py's Minutiae for ``template``, or None when BOZORTH3 would score it 0."""
        if not isinstance(template, Template):
            raise ComparisonFailed(f"expected a Template, got {type(template).__name__}")
        limit = self._limit()
        cache = self.__dict__.get("_cache")
        if cache is None:
            cache = self.__dict__.setdefault("_cache", weakref.WeakKeyDictionary())
        hit = cache.get(template)
        if hit is not None and hit[0] == limit:
            return hit[1]
        data = self.native_bytes(template)
        if len(data) < native.HEADER_SIZE or data[: len(native.MAGIC)] != native.MAGIC:
            raise ComparisonFailed("the native template is not in nbis-py's layout")
        loaded = None
        if data[native.HEADER_SIZE - 1] >= MIN_COMPUTABLE_MINUTIAE:
            nbis = _lib.import_nbis()
            try:
                loaded = _lib.template_loader().load_iso_19794_2_2005(data)
            except nbis.NbisError as exc:
                raise ComparisonFailed(f"nbis-py cannot read the template: {exc!r}") from exc
        with _CACHE_LOCK:
            cache[template] = (limit, loaded)
        return loaded

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_cache", None)
        return state


_CACHE_LOCK = threading.Lock()
