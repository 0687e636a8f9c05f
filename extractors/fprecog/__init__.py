"""fingerprint-recognition 2.1 (K. Jankoski): its extractor and its matcher; see
:mod:`extractors.fprecog.plugins`.

- :class:`FprecogExtractor`: entry point ``fprecog``.
- :class:`FprecogMatcher`: entry point ``fprecog``.
"""

from extractors.fprecog.plugins import FprecogExtractor, FprecogMatcher

__all__ = ["FprecogExtractor", "FprecogMatcher"]
