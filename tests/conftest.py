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


def source_file(name: str, source: str) -> Path:
    """A file of test plugins that worker processes import by path: written once per test
    session in a fixed temporary place (atomically, so concurrent sessions agree)."""
    import tempfile

    stem = Path(name).stem
    path = Path(tempfile.gettempdir()) / f"fingerbench-test-{stem}-{os.getuid()}" / name
    if not path.exists() or path.read_text() != source:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(source)
        tmp.replace(path)
    return path


def dummy(name: str) -> str:
    """Plugin target of a test plugin, loadable in any worker process."""
    return f"{DUMMY}:{name}"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA} (set FINGERBENCH_TEST_DATA)")
    return SHARED_DATA


#: The image sets of :func:`image_set`: the embedded one every checkout can make, and a real one.
IMAGE_SETS = ("synthetic", "fvc2002-db1-b")


@pytest.fixture(scope="session")
def embedded_synthetic(tmp_path_factory) -> Path:
    """The embedded synthetic set's folder (10 fingers x 8 impressions, ``<f>_<i>.png``),
    generated once per test session into the tests' cache, where ``fingerbench run`` run by
    a test finds it too."""
    from bench.synthetic.dataset import ensure_dataset

    return ensure_dataset(cache_dir=tmp_path_factory.getbasetemp() / "cache", progress=False)


@pytest.fixture(scope="session", params=IMAGE_SETS)
def image_set(request, tmp_path_factory) -> Path:
    """A folder of 80 images laid out as an FVC B set (``<finger>_<impression>.tif``, fingers
    101-110, impressions 1-8): the embedded synthetic set, renumbered (pixels unchanged), so
    that tests of the runner run on every checkout; and FVC2002 DB1_B, where the real data
    is present (skipped with the reason where it is not)."""
    if request.param == "synthetic":
        import cv2

        source = request.getfixturevalue("embedded_synthetic")
        root = tmp_path_factory.mktemp("synthetic-b-set")
        for f in range(1, 11):
            for i in range(1, 9):
                image = cv2.imread(str(source / f"{f}_{i}.png"), cv2.IMREAD_GRAYSCALE)
                assert image is not None, source / f"{f}_{i}.png"
                cv2.imwrite(str(root / f"{100 + f}_{i}.tif"), image)
        return root
    return request.getfixturevalue("shared_data") / "fvc2002" / "DB1_B"


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
