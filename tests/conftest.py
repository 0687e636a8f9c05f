"""Shared fixtures: where the real data lies, and small datasets built from it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import pytest

from bench.datasets.base import Dataset, DatasetInfo, Sample

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("FINGERBENCH_TEST_DATA") or PROJECT_ROOT.parent / "shared" / "datasets")
DUMMY = Path(__file__).resolve().parent / "dummy_plugins.py"


#: Description of the tiny image folders that tests make.
TOY_INFO = DatasetInfo("toy", "toy set", "none", 500, None, None, None, "test", "", "", ("fvc",))


def folder_dataset(root: Path, dpi: float = 500, info: DatasetInfo = TOY_INFO) -> Dataset:
    """A dataset of the images ``<subject>_<impression>.<ext>`` in ``root``."""
    samples = []
    for path in sorted(root.glob("*.*")):
        subject, impression = path.stem.split("_")
        samples.append(Sample(path.stem, subject, int(impression), path, dpi))
    return Dataset(info, root, samples)


def dummy(name: str) -> str:
    """Plugin target of a test plugin, loadable in any worker process."""
    return f"{DUMMY}:{name}"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA} (set FINGERBENCH_TEST_DATA)")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Never write templates to the user's cache from tests."""
    monkeypatch.setenv("FINGERBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def count_python_calls(fn: Callable[[], Any]) -> tuple[int, Any]:
    """(number of Python and C function calls made while running ``fn``, its result).

    A measure of the work done that does not depend on the machine's speed or load: a
    vectorised computation makes a few hundred calls whatever its input size, a Python loop
    over items makes at least one per item."""
    import sys

    calls = 0

    def profile(_frame: Any, event: str, _arg: Any) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    sys.setprofile(profile)
    try:
        result = fn()
    finally:
        sys.setprofile(None)
    return calls, result
