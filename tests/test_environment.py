"""The packages the test extra installs, required where the suite is the project's gate.

Tests that compare with an independent implementation (pyeer for the metrics, NBIS for
MINDTCT's conventions) or need an optional engine (Dask, usearch, hypothesis) skip, with
the reason, where the package is missing: a user's machine may lack it. In CI such a skip
would let a check stop running unnoticed (it happened: an upgraded setuptools made pyeer
fail to import, and the metrics' cross-check skipped). ``.ci/run`` therefore sets
``FINGERBENCH_REQUIRE_TEST_PACKAGES=1``, and there a missing package fails here, by name.
"""

from __future__ import annotations

import importlib
import os

import pytest

#: module -> what needs it (the extras of pyproject.toml's ``test`` and the dependencies).
REQUIRED = {
    "pyeer.eer_info": "the EER and error-curve cross-check (tests/test_metrics.py)",
    "nbis": "MINDTCT and BOZORTH3, the reference conventions (tests/test_nbis.py, test_formats.py)",
    "hypothesis": "the property-based template-format tests (tests/test_format_fuzz.py)",
    "distributed": "the Dask backend (tests/test_identification_dask.py)",
    "usearch": "the mcc-ann index (tests/test_indexing.py)",
    "pyarrow": "Parquet score tables (tests/test_importing.py)",
    "cv2": "image decoding and the classic extractor",
    "pytest_benchmark": "the speed benchmarks under tests/benchmarks",
}

REQUIRE = os.environ.get("FINGERBENCH_REQUIRE_TEST_PACKAGES", "") not in ("", "0")


@pytest.mark.parametrize("module", sorted(REQUIRED))
def test_the_gate_has_every_package_its_cross_checks_need(module: str) -> None:
    if not REQUIRE:
        pytest.skip("set FINGERBENCH_REQUIRE_TEST_PACKAGES=1 (as .ci/run does) to require the test packages")
    try:
        importlib.import_module(module)
    except Exception as exc:  # ImportError, or a package that fails while importing
        pytest.fail(f"{module} cannot be imported ({type(exc).__name__}: {exc}); needed for {REQUIRED[module]}. "
                    f"Install the test extra: pip install -e '.[test]'")
