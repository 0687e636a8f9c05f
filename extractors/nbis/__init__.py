"""NBIS (NIST Biometric Image Software) through the ``nbis-py`` bindings.

- :class:`MindtctExtractor`: MINDTCT (NIST LFS v2) minutiae extraction, entry point ``mindtct``.
- :class:`Bozorth3Matcher`: BOZORTH3 minutiae matching, entry point ``bozorth3``; it
  compares nbis-py templates and templates with standard minutiae from any extractor.
- :func:`nfiq2_score`: NFIQ 2 quality of an image.

The byte layout nbis-py uses for its templates is described in :mod:`extractors.nbis.native`.
"""

from extractors.nbis.bozorth3 import Bozorth3Matcher
from extractors.nbis.mindtct import MindtctExtractor
from extractors.nbis.nfiq2 import nfiq2_score

__all__ = ["MindtctExtractor", "Bozorth3Matcher", "nfiq2_score"]
