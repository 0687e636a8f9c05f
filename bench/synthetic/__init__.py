"""Synthetic fingerprints with ground truth, in the spirit of SFinGe (Cappelli, Maio,
Maltoni): a benchmark dataset that needs no download and no licence.

- :func:`generate_dataset` writes a set in the FVC layout with ground truth, resumably,
  in parallel, bit-identically for a given seed;
- :func:`ensure_dataset` returns the default set (generated into the cache once);
- :func:`evaluate_minutiae` / :func:`aggregate` score an extractor's minutiae against
  ground truth; :func:`read_groundtruth`, :func:`read_xyt`, :func:`read_iso` read it;
- :func:`nbis_check` measures a set with NBIS (MINDTCT, NFIQ 2, BOZORTH3).

Modules: ``orientation`` (classes, singular points, orientation model), ``ridges``
(ridge period, footprint, Gabor growth), ``minutiae`` (ground-truth extraction),
``master`` (one synthetic finger), ``impression`` (one impression and its ground truth),
``generate`` (datasets on disk; ISO records through :mod:`bench.formats`), ``groundtruth``
(ground-truth files), ``accuracy`` (minutiae-level evaluation), ``dataset`` (registry
entry), ``quality`` (NBIS measurements), ``model`` (the statistical minutiae model that
makes 1:N galleries of any size without images).
"""

from bench.synthetic.accuracy import MinutiaeAccuracy, aggregate, evaluate_minutiae, pair_minutiae
from bench.synthetic.dataset import DEFAULT_PARAMS, ensure_dataset, load_synthetic
from bench.synthetic.generate import (
    DIFFICULTY_LEVELS,
    GENERATOR_VERSION,
    GenerationReport,
    SyntheticConfig,
    generate_dataset,
    is_complete,
    make_config,
    make_finger,
)
from bench.synthetic.groundtruth import GroundTruth, read_groundtruth, read_iso, read_xyt


def nbis_check(*args, **kwargs):  # noqa: ANN002, ANN003 - imported lazily (needs nbis)
    """See :func:`bench.synthetic.quality.nbis_check`."""
    from bench.synthetic.quality import nbis_check as check

    return check(*args, **kwargs)


__all__ = [
    "DEFAULT_PARAMS",
    "DIFFICULTY_LEVELS",
    "GENERATOR_VERSION",
    "GenerationReport",
    "GroundTruth",
    "MinutiaeAccuracy",
    "SyntheticConfig",
    "aggregate",
    "ensure_dataset",
    "evaluate_minutiae",
    "generate_dataset",
    "is_complete",
    "load_synthetic",
    "make_config",
    "make_finger",
    "nbis_check",
    "pair_minutiae",
    "read_groundtruth",
    "read_iso",
    "read_xyt",
]
