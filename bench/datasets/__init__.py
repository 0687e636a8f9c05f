"""Datasets of fingerprint images: a registry of known layouts and their loaders.

    >>> from bench.datasets import available, open_dataset
    >>> ds = open_dataset("fvc2002-db1-b", data_root="/data/fingerprints")
    >>> ds.problems            # what was found wrong: missing, extra, duplicate, ...
    >>> ds.read_image(ds.samples[0])

Where a dataset lies: ``root`` (its own folder) wins; else ``data_root`` joined with the
dataset's ``default_subdir``; else the folder named by the environment variable
``FINGERBENCH_DATA``, joined likewise. Third-party packages add datasets through the
entry-point group ``fingerbench.datasets``: see :mod:`bench.datasets.registry`.
"""

from bench.datasets.base import (
    Dataset,
    DatasetError,
    DatasetInfo,
    ImageError,
    Problem,
    Sample,
    read_grayscale,
    sha256_file,
)
from bench.datasets.imagecheck import VALIDATION_LEVELS, probe_image
from bench.datasets.registry import (
    DATA_ENV,
    ENTRY_POINT_GROUP,
    Registration,
    available,
    load_plugins,
    open_dataset,
    register,
    registration,
    resolve_root,
)

__all__ = [
    "DATA_ENV",
    "ENTRY_POINT_GROUP",
    "VALIDATION_LEVELS",
    "Dataset",
    "DatasetError",
    "DatasetInfo",
    "ImageError",
    "Problem",
    "Registration",
    "Sample",
    "available",
    "load_plugins",
    "open_dataset",
    "probe_image",
    "read_grayscale",
    "register",
    "registration",
    "resolve_root",
    "sha256_file",
]
