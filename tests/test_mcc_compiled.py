"""The compiled MCC kernel against the numpy reference: same cylinders, same scores.

Cylinders and local similarities are compared bit for bit; global scores within
``SCORE_TOLERANCE``, the float32 rounding of the relaxation (sums and exp), which is
the only place where the two implementations may round differently.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from bench.formats import read_template
from bench.template import Template, make_minutiae
from extractors.classic import ClassicExtractor
from extractors.mcc import MccMatcher, compiled
from extractors.mcc import cylinders as reference

pytestmark = pytest.mark.skipif(not compiled.AVAILABLE, reason=compiled.UNAVAILABLE_REASON or "numba missing")

#: Largest difference allowed between a compiled and a reference score (float32 rounding).
SCORE_TOLERANCE = 1e-5

B_SETS = [("fvc2000", f"DB{i}_B") for i in range(1, 5)] + [("fvc2002", f"DB{i}_B") for i in range(1, 5)]


def pair_of_matchers(**params) -> tuple[MccMatcher, MccMatcher]:
    return MccMatcher(kernel="numba", **params), MccMatcher(kernel="numpy", **params)


def assert_same_cylinders(a: reference.CylinderSet, b: reference.CylinderSet) -> None:
    assert len(a) == len(b)
    assert np.array_equal(a.theta, b.theta) and np.array_equal(a.xy, b.xy)
    assert np.array_equal(a.valid, b.valid)
    assert np.array_equal(a.packed, b.packed)
    assert np.array_equal(a.energy, b.energy)
    assert np.array_equal(a.pairs, b.pairs)


def assert_same_scores(fast: MccMatcher, ref: MccMatcher, probes: list[Template], gallery: list[Template]) -> int:
    """Compares 1:N scores of both kernels and, for a few pairs, 1:1; returns the count."""
    n = 0
    for probe in probes:
        got, want = fast.compare_many(probe, gallery), ref.compare_many(probe, gallery)
        assert got.dtype == np.float64 and got.shape == want.shape
        assert np.abs(got - want).max(initial=0.0) <= SCORE_TOLERANCE, np.abs(got - want).max()
        for j in range(0, len(gallery), max(1, len(gallery) // 5)):
            assert fast.compare(probe, gallery[j]) == got[j]  # 1:1 is the same kernel, exactly
        n += len(gallery)
    return n


# ------------------------------------------------------------------- real templates
@pytest.fixture(scope="module")
def b_set_templates(shared_data) -> dict[str, list[Template]]:
    """Classic-extractor templates of 3 fingers x 3 impressions of each of the eight B sets."""
    ex = ClassicExtractor()
    out = {}
    for year, db in B_SETS:
        folder = shared_data / year / db
        dpi = 569 if (year, db) == ("fvc2002", "DB2_B") else 500
        out[f"{year}/{db}"] = [
            ex.extract(cv2.imread(str(folder / f"{f}_{i}.tif"), cv2.IMREAD_GRAYSCALE), dpi)
            for f in (101, 102, 103) for i in (1, 2, 3)
        ]
    return out


def test_same_cylinders_and_scores_on_all_eight_b_sets(b_set_templates):
    fast, ref = pair_of_matchers()
    compared = 0
    for name, templates in b_set_templates.items():
        for t in templates:
            assert_same_cylinders(fast.prepare(t), ref.prepare(t))
        compared += assert_same_scores(fast, ref, templates, templates)
    assert compared == 8 * 9 * 9


@pytest.fixture(scope="module")
def iso_templates(shared_data) -> list[Template]:
    """ISO/IEC 19794-2 templates of the FVC2002 B sets (a commercial extractor's minutiae)."""
    root = shared_data / "templates" / "iso19794-2-fvc2002"
    paths = sorted(root.glob("DB*_B/*.iso"))
    if not paths:
        pytest.skip(f"no ISO templates under {root}")
    return [read_template(p) for p in paths]


@pytest.mark.parametrize("ns", [16, 8])
def test_same_scores_on_commercial_iso_templates(iso_templates, ns):
    fast, ref = pair_of_matchers(ns=ns)
    probes = iso_templates[::40]
    assert assert_same_scores(fast, ref, probes, iso_templates) == len(probes) * len(iso_templates)
    for t in iso_templates[::16]:
        assert_same_cylinders(fast.prepare(t), ref.prepare(t))


def test_local_similarities_are_bit_identical(iso_templates):
    fast, ref = pair_of_matchers()
    for a, b in [(iso_templates[0], iso_templates[1]), (iso_templates[100], iso_templates[260])]:
        got, want = fast.local_similarities(a, b), ref.local_similarities(a, b)
        assert got.dtype == np.float32 and np.array_equal(got, want)
        assert (got > 0).sum() > 100


# ------------------------------------------------------------------ synthetic templates
def random_template(rng: np.random.Generator, n: int, size: int = 400, dpi: float = 500) -> Template:
    m = make_minutiae(rng.uniform(20, size - 20, n), rng.uniform(20, size - 20, n), rng.uniform(0, 2 * np.pi, n),
                      rng.integers(1, 3, n), 50)
    return Template(m, size, size, dpi)


def perturbed(rng: np.random.Generator, t: Template, keep: float = 0.8) -> Template:
    """A noisy partial copy: the genuine-like comparisons where relaxation matters."""
    m = t.minutiae[rng.random(len(t)) < keep]
    return Template(make_minutiae(m["x"] + rng.normal(0, 3, len(m)), m["y"] + rng.normal(0, 3, len(m)),
                                  m["angle"] + rng.normal(0, 0.1, len(m))), t.width, t.height, t.dpi)


def test_same_scores_on_synthetic_templates():
    rng = np.random.default_rng(11)
    base = [random_template(rng, n) for n in (3, 8, 25, 40, 60, 90)]
    gallery = base + [perturbed(rng, t) for t in base] + [random_template(rng, 35, dpi=569)]
    for params in ({}, {"ns": 8}, {"min_np": 2, "max_np": 20, "n_rel": 3}, {"max_angle_difference": math.pi}):
        fast, ref = pair_of_matchers(**params)
        assert_same_scores(fast, ref, gallery, gallery)


def test_bad_templates_give_the_reference_result():
    rng = np.random.default_rng(5)
    real = random_template(rng, 40)
    outside = Template(make_minutiae(rng.uniform(-900, 1500, 40), rng.uniform(-900, 1500, 40),
                                     rng.uniform(0, 2 * np.pi, 40)), 300, 300, 500)
    duplicated = Template(np.concatenate([real.minutiae, real.minutiae[:10]]), 400, 400, 500)
    coincident = Template(make_minutiae(np.full(8, 100.0), np.full(8, 100.0), np.linspace(0, 3, 8)), 300, 300, 500)
    many = random_template(rng, 500, size=2000)
    cases = [Template(make_minutiae([], [], []), 300, 300, 500), random_template(rng, 1), random_template(rng, 2),
             outside, duplicated, coincident, many, real, perturbed(rng, many, keep=0.5)]
    fast, ref = pair_of_matchers()
    assert_same_scores(fast, ref, cases, cases)
    for n in (0, 1, 2):
        assert fast.compare(cases[n], real) == 0.0 and fast.compare(real, cases[n]) == 0.0
    assert fast.compare_many(real, []).shape == (0,)


def test_positions_beyond_any_image_are_refused_by_name():
    # A Template refuses NaN itself; a finite position such as the 3.4e38 of a corrupt
    # .xyt file would overflow the float32 geometry: both kernels refuse it by name.
    huge = Template(make_minutiae([3e38, 20, 40], [10, 60, 20], [0, 1, 2]), 300, 300, 500,
                    extra={"source": "huge.xyt"})
    for m in pair_of_matchers():
        with pytest.raises(ValueError, match="huge.xyt.*beyond"):
            m.compare(huge, huge)


# ------------------------------------------------------------------------ selection
def test_kernel_choice_and_fallback(monkeypatch):
    assert MccMatcher().kernel_in_use == "numba"
    assert MccMatcher(bits=False).kernel_in_use == "numpy"
    assert MccMatcher(kernel="numpy").kernel_in_use == "numpy"
    with pytest.raises(ValueError, match="bit cylinders"):
        _ = MccMatcher(kernel="numba", bits=False).kernel_in_use
    with pytest.raises(ValueError, match="kernel must be"):
        MccMatcher(kernel="fortran").compare(random_template(np.random.default_rng(0), 5),
                                             random_template(np.random.default_rng(1), 5))
    # Without numba, "auto" falls back to the reference and still scores; "numba" says why not.
    monkeypatch.setattr(compiled, "AVAILABLE", False)
    monkeypatch.setattr(compiled, "UNAVAILABLE_REASON", "numba is not installed (test)")
    m = MccMatcher()
    assert m.kernel_in_use == "numpy"
    rng = np.random.default_rng(2)
    t = random_template(rng, 30)
    assert m.compare(t, t) > 0.99
    with pytest.raises(RuntimeError, match="numba is not installed"):
        _ = MccMatcher(kernel="numba").kernel_in_use


def test_selection_breaks_ties_by_position():
    from extractors.mcc.consolidation import select_pairs

    gamma = np.array([[0.5, 0.9, 0.5, 0.0, 0.5, 0.9], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]], dtype=np.float32)
    idx, values = select_pairs(gamma, 3)
    assert idx.tolist() == [[0, 1, 5], [0, 1, 2]]
    assert np.array_equal(values, gamma[[[0], [1]], idx])
    chosen = np.empty(6, dtype=np.int64)
    for row, want in zip(gamma, idx):
        compiled._select(row.copy(), row.size, 3, np.empty((3, row.size)), chosen)
        assert chosen[:3].tolist() == want.tolist()
    rng = np.random.default_rng(4)
    for _ in range(200):
        size = int(rng.integers(2, 300))
        row = rng.choice(np.array([0, 0, 0.25, 0.5, 0.75, 1.0], dtype=np.float32), size) * rng.integers(1, 3)
        row = np.minimum(row, 1).astype(np.float32)
        n_r = int(rng.integers(1, size + 1))
        want = select_pairs(row[None, :], n_r)[0][0]
        compiled._select(row, size, n_r, np.empty((3, size)), chosen := np.empty(size, dtype=np.int64))
        assert chosen[: len(want)].tolist() == want.tolist()


# ------------------------------------------------------------------ the PyTorch path
#: The devices the tensor path is tested on: the CPU everywhere, a GPU where there is one.
TORCH_DEVICES = ["cpu", "cuda"]


def torch_matcher(device: str = "cpu", **params) -> MccMatcher:
    from extractors.mcc import gpu

    if not gpu.AVAILABLE:
        pytest.skip(gpu.UNAVAILABLE_REASON)
    if device == "cuda" and not gpu.cuda_available():
        pytest.skip("no CUDA device: the tensor path is checked on the CPU")
    m = MccMatcher(kernel="torch", device=device, **params)
    assert m.kernel_in_use == "torch"
    return m


@pytest.mark.parametrize("device", TORCH_DEVICES)
@pytest.mark.parametrize("ns", [16, 8])
def test_torch_path_gives_the_reference_scores(iso_templates, ns, device):
    # The code that runs on a GPU (run on the CPU where there is none): the reference's scores.
    fast, ref = torch_matcher(device, ns=ns), MccMatcher(ns=ns, kernel="numpy")
    probes = iso_templates[::64]
    assert assert_same_scores(fast, ref, probes, iso_templates) == len(probes) * len(iso_templates)


@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_torch_path_on_synthetic_and_bad_templates(device):
    rng = np.random.default_rng(12)
    base = [random_template(rng, n) for n in (0, 1, 2, 3, 8, 40, 90)]
    gallery = base + [perturbed(rng, t) for t in base[3:]] + [random_template(rng, 300, size=1500)]
    for params in ({}, {"min_np": 2, "max_np": 20, "n_rel": 3}):
        assert_same_scores(torch_matcher(device, **params), MccMatcher(kernel="numpy", **params), gallery, gallery)


def test_torch_without_a_gpu_falls_back_to_the_cpu_kernel(iso_templates, monkeypatch):
    from extractors.mcc import gpu

    monkeypatch.setattr(gpu, "cuda_available", lambda: False)
    on_gpu, on_cpu = MccMatcher(kernel="torch"), MccMatcher()
    assert on_gpu.kernel_in_use == on_cpu.kernel_in_use == "numba"
    probe, gallery = iso_templates[3], iso_templates[:60]
    assert np.array_equal(on_gpu.compare_many(probe, gallery), on_cpu.compare_many(probe, gallery))
    monkeypatch.setattr(gpu, "AVAILABLE", False)
    assert MccMatcher(kernel="torch", device="cpu").kernel_in_use == "numba"


@pytest.mark.parametrize("kernel", ["numba", "numpy"])
def test_compare_subset_gives_the_scores_of_compare_many_on_the_subset(kernel):
    # a 1:N cascade passes the whole shard and the index's candidates: same scores, to the bit
    rng = np.random.default_rng(5)
    gallery = [random_template(rng, int(n)) for n in rng.integers(0, 60, 80)]
    m = MccMatcher(kernel=kernel)
    probe = perturbed(rng, gallery[7])
    for positions in ([7], [0, 3, 7, 79], np.sort(rng.choice(80, 30, replace=False)), []):
        subset = [gallery[i] for i in positions]
        assert np.array_equal(m.compare_subset(probe, gallery, positions), m.compare_many(probe, subset))
    with pytest.raises(IndexError, match="outside a gallery of 80"):
        m.compare_subset(probe, gallery, [80])


@pytest.mark.parametrize("kernel", ["numba", "numpy"])
def test_the_kept_gallery_follows_the_templates_it_is_given(kernel):
    # the stacked gallery is reused only while the very same Template objects come back:
    # a list changed in place, or another list of the same length, is stacked again
    rng = np.random.default_rng(8)
    gallery = [random_template(rng, 30) for _ in range(6)]
    m, fresh = MccMatcher(kernel=kernel), MccMatcher(kernel=kernel)
    probe = perturbed(rng, gallery[2])
    first = m.compare_many(probe, gallery)
    assert np.array_equal(m.compare_many(probe, gallery), first)
    gallery[2] = random_template(rng, 30)  # same list object, one template replaced
    changed = m.compare_many(probe, gallery)
    assert changed[2] != first[2] and np.array_equal(changed, fresh.compare_many(probe, gallery))
    other = [random_template(rng, 30) for _ in range(6)]  # same length, other templates
    assert np.array_equal(m.compare_many(probe, other), fresh.compare_many(probe, other))
    assert np.array_equal(m.compare_subset(probe, gallery, [2, 4]), fresh.compare_many(probe, [gallery[2], gallery[4]]))
