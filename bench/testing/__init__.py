"""A conformance kit for plugins, in the spirit of scikit-learn's ``check_estimator``.

    >>> from bench.testing import check_extractor, check_matcher
    >>> report = check_extractor(MyExtractor())
    >>> print(report.format())          # one verdict per check
    >>> report.raise_if_failed()        # in a test: fails with the list of failed checks

The checks run the plugin in this process on a few synthetic impressions with
ground-truth minutiae (:mod:`bench.testing.data`): no download, seconds per plugin.
Extractors: attributes, parameters readable through ``get_params``, a Template per image
with the image's size and resolution, minutiae inside the image, angles in radians,
position and angle conventions judged against the ground truth (degrees, y flipped,
clockwise angles), storable in the template cache, deterministic, input left unchanged,
a blank image. Matchers: attributes, parameters, a real-number score, deterministic,
genuine above impostor in the declared direction, ``compare_many`` equal to a loop of
``compare``, symmetry (reported), empty and one-minutia templates.
``fingerbench check PLUGIN`` runs the kit from the command line.
"""

from bench.testing.data import KitSample, kit_samples
from bench.testing.extractor import check_extractor
from bench.testing.matcher import check_matcher
from bench.testing.results import CheckResult, ConformanceError, ConformanceReport

__all__ = ["CheckResult", "ConformanceError", "ConformanceReport", "KitSample", "check_extractor",
           "check_matcher", "kit_samples"]
