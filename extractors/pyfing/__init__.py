"""pyfing (R. Cappelli, MIT): the classical pipeline (GMFS, GBFOE, XSFFE, GBFEN, SBMEX)
as one extractor and the LEADER network as another; see :mod:`extractors.pyfing.plugins`.

- :class:`PyfingClassicExtractor`: entry point ``pyfing-classic``.
- :class:`PyfingLeaderExtractor`: entry point ``pyfing-leader``.
"""

from extractors.pyfing.plugins import PyfingClassicExtractor, PyfingLeaderExtractor

__all__ = ["PyfingClassicExtractor", "PyfingLeaderExtractor"]
