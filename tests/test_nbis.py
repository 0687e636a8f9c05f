"""Tests of the NBIS family (MINDTCT and BOZORTH3 through nbis-py).

The tests on real fingerprints read the shared FVC data from ``../shared/datasets``
(or the folder named by FINGERBENCH_TEST_DATA) and skip when it is absent.
"""

from __future__ import annotations

import copy

import os
from pathlib import Path

import numpy as np
import pytest

nbis = pytest.importorskip("nbis", reason="nbis-py is not installed")
cv2 = pytest.importorskip("cv2")

from bench.plugins import BatchMatcher, Extractor, FailureToEnrol, get_params  # noqa: E402
from bench.template import TYPE_BIFURCATION, TYPE_ENDING, Template, make_minutiae  # noqa: E402
from extractors.nbis import Bozorth3Matcher, MindtctExtractor, nfiq2_score  # noqa: E402
from extractors.nbis import _lib, native  # noqa: E402

DATA = Path(os.environ.get("FINGERBENCH_TEST_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "datasets")


def _need(*parts: str) -> Path:
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real fingerprint data not found at {path} (set FINGERBENCH_TEST_DATA)")
    return path


def _read(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    assert img is not None, path
    return img


# FVC2002 DB1_B: fingers 101-104, impressions 1-4 (500 dpi)
FINGERS = (101, 102, 103, 104)
IMPRESSIONS = (1, 2, 3, 4)


@pytest.fixture(scope="module")
def db1():
    folder = _need("fvc2002", "DB1_B")
    ex = MindtctExtractor()
    items = []
    for f in FINGERS:
        for i in IMPRESSIONS:
            img = _read(folder / f"{f}_{i}.tif")
            items.append((f, img, ex.extract(img, 500.0)))
    return items


@pytest.fixture(scope="module")
def score_matrix(db1):
    m = Bozorth3Matcher()
    tpls = [t for _, _, t in db1]
    return np.array([m.compare_many(t, tpls) for t in tpls])


def _strip(t: Template, **changes) -> Template:
    """The same minutiae as a plain ("minutiae") template, as another extractor would give."""
    kw = dict(minutiae=t.minutiae.copy(), width=t.width, height=t.height, dpi=t.dpi)
    kw.update(changes)
    return Template(**kw)


# -- plugin interface ----------------------------------------------------------------------
def test_params_and_protocols():
    ex = MindtctExtractor(min_quality=0.1)
    assert get_params(ex) == {"min_quality": 0.1, "compute_nfiq2": False}
    assert vars(ex) == {"min_quality": 0.1, "compute_nfiq2": False}  # nothing else done in __init__
    assert get_params(Bozorth3Matcher()) == {"max_minutiae": 150}
    assert vars(Bozorth3Matcher(max_minutiae=120)) == {"max_minutiae": 120}
    assert isinstance(ex, Extractor) and isinstance(Bozorth3Matcher(), BatchMatcher)
    assert ex.template_format == "nbis-py" and ex.version.startswith("nbis-py ")
    m = Bozorth3Matcher()
    assert m.higher_is_better is True and m.accepted_formats == ("nbis-py", "minutiae")
    assert MindtctExtractor.check_available() == "" and Bozorth3Matcher.check_available() == ""


# -- extraction ------------------------------------------------------------------------------
def test_extraction_on_real_images(db1):
    for _, img, t in db1:
        m = t.minutiae
        assert 10 <= len(t) <= 120
        assert (t.width, t.height, t.dpi) == (img.shape[1], img.shape[0], 500.0)
        assert np.all((m["x"] >= 0) & (m["x"] < t.width) & (m["y"] >= 0) & (m["y"] < t.height))
        assert np.all((m["angle"] >= 0) & (m["angle"] < 2 * np.pi))
        steps = np.rad2deg(m["angle"]) / 11.25  # MINDTCT's 32 directions
        assert np.allclose(steps, np.round(steps), atol=1e-4)
        assert set(np.unique(m["type"])) <= {TYPE_ENDING, TYPE_BIFURCATION}
        assert np.all(m["quality"] <= 100)
        assert t.native_format == "nbis-py" and t.extra == {}
        # nbis-py sorts by x then y, and the native bytes list the same minutiae in the same order
        assert np.all(np.diff(m["x"]) >= 0)
        decoded, w, h, _ = native.decode(t.native)
        assert (w, h) == (t.width, t.height)
        for key in ("x", "y", "type"):
            assert np.array_equal(decoded[key], m[key])
        assert np.allclose(decoded["angle"], m["angle"], atol=1e-6)
        assert np.all(np.abs(decoded["quality"].astype(int) - m["quality"].astype(int)) <= 2)


def test_minutiae_equal_nbis_accessors(db1):
    """Each minutia is nbis-py's own Minutia converted: x, y as is, degrees to radians, kind to type."""
    _, img, t = db1[0]
    found = _lib.nbis_extractor(0.0, False, 500.0).extract_minutiae(cv2.imencode(".png", img)[1].tobytes())
    got = found.get()
    assert len(got) == len(t)
    kinds = {nbis.MinutiaKind.RIDGE_ENDING: TYPE_ENDING, nbis.MinutiaKind.BIFURCATION: TYPE_BIFURCATION}
    for row, q in zip(t.minutiae, got):
        assert (row["x"], row["y"]) == (q.x(), q.y())
        assert abs(np.rad2deg(row["angle"]) - q.angle()) < 1e-4
        assert row["type"] == kinds[q.kind()]
        assert row["quality"] == int(np.floor(100 * q.reliability() + 0.5))


def test_angle_points_into_the_ridge_at_endings(db1):
    """ISO direction, counter-clockwise with y down: a few pixels ahead of a ridge ending lies
    its ridge (dark) and behind it the valley (light); at a bifurcation ahead is the valley
    between the branches. The opposite sign of the y step gives no such pattern."""

    def ahead_darker(sign_y: float) -> dict[int, float]:
        out: dict[int, list[bool]] = {TYPE_ENDING: [], TYPE_BIFURCATION: []}
        for _, img, t in db1:
            smooth = cv2.GaussianBlur(img, (3, 3), 0).astype(float)
            h, w = smooth.shape
            for m in t.minutiae[t.minutiae["quality"] >= 50]:
                vals = []
                for s in (1.0, -1.0):
                    pts = [(m["x"] + s * r * np.cos(m["angle"]), m["y"] - sign_y * s * r * np.sin(m["angle"])) for r in (5, 6, 7)]
                    v = [smooth[int(round(y)), int(round(x))] for x, y in pts if 0 <= round(x) < w and 0 <= round(y) < h]
                    vals.append(np.mean(v) if v else np.nan)
                if not np.isnan(vals).any():
                    out[int(m["type"])].append(vals[0] < vals[1])
        return {k: float(np.mean(v)) for k, v in out.items()}

    iso = ahead_darker(+1.0)
    assert iso[TYPE_ENDING] > 0.9 and iso[TYPE_BIFURCATION] < 0.15
    flipped = ahead_darker(-1.0)
    assert 0.25 < flipped[TYPE_ENDING] < 0.75


def test_relationship_with_shared_xyt_files():
    """What the shared MINDTCT .xyt files of fvc2000/DB1_B are, measured against these images.

    Not the NIST xyt convention: y is the row from the top (not height - row), x is the
    column + 15 (the xyt were made from a copy of the image shifted 15 px to the right),
    and theta is the ISO angle halved (INCITS 378's 2-degree unit): for MINDTCT direction
    index d, theta = floor(((90 - round_half_up(11.25 d)) mod 360) / 2).
    """
    folder = _need("fvc2000", "DB1_B")
    xyt_dir = _need("templates", "nbis-fvc2000-db1b", "xyt")
    ex = MindtctExtractor()
    best_offsets, matched, total, flipped_matched, theta_ok, theta_near = [], 0, 0, 0, 0, 0
    for name in ("101_1", "101_2", "102_1", "103_3", "104_5", "105_2", "106_8", "108_4"):
        img = _read(folder / f"{name}.tif")
        t = ex.extract(img, 500.0)
        xyt = np.loadtxt(xyt_dir / f"{name}.xyt", ndmin=2)
        m = t.minutiae
        ours = np.stack([m["x"], m["y"]], axis=1).astype(int)
        d = (xyt[None, :, :2] - ours[:, None, :]).reshape(-1, 2).astype(int)
        values, counts = np.unique(d, axis=0, return_counts=True)
        best_offsets.append(tuple(values[counts.argmax()]))

        def pairs(xy: np.ndarray) -> list[tuple[int, int]]:
            dist = np.abs(xy[None, :, :] - ours[:, None, :]).max(axis=2)
            return [(i, j) for i, j in enumerate(dist.argmin(axis=1)) if dist[i, j] <= 2 and dist[:, j].argmin() == i]

        ok = pairs(xyt[:, :2] - [15, 0])
        matched += len(ok)
        total += len(t)
        flipped_matched += len(pairs(np.stack([xyt[:, 0] - 15, t.height - xyt[:, 1]], axis=1)))
        deg = np.rad2deg(m["angle"])
        for i, j in ok:
            d_index = int(round((90 - deg[i]) / 11.25)) % 32
            predicted = ((90 - int(np.floor(11.25 * d_index + 0.5))) % 360) // 2
            theta_ok += predicted == int(xyt[j, 2])
            theta_near += abs(((2 * xyt[j, 2] - deg[i]) + 180) % 360 - 180) <= 12
    assert best_offsets.count((15, 0)) >= len(best_offsets) - 1
    assert matched >= 0.6 * total
    assert flipped_matched <= 0.1 * total  # the documented NIST flip does not fit these files
    assert theta_ok >= 0.85 * matched and theta_near >= 0.95 * matched


def test_dpi_is_passed_to_nbis(monkeypatch):
    folder = _need("fvc2002", "DB2_B")
    img = _read(folder / "101_1.tif")
    seen = []
    real = nbis.new_nbis_extractor

    def spy(settings):
        seen.append(settings.ppi)
        return real(settings)

    monkeypatch.setattr(nbis, "new_nbis_extractor", spy)
    _lib.nbis_extractor.cache_clear()  # nbis-py extractors are shared; start afresh
    ex = MindtctExtractor()
    t569 = ex.extract(img, 569.0)
    assert t569.dpi == 569.0 and ex._nbis(569.0).settings().ppi == 569.0
    t500 = ex.extract(img, 500.0)
    t_odd = ex.extract(img, 571.25)
    assert seen == [569.0, 500.0, 571.25] and t_odd.dpi == 571.25
    # the resolution changes MINDTCT's reliabilities, not its minutiae
    for key in ("x", "y", "angle", "type"):
        assert np.array_equal(t569.minutiae[key], t500.minutiae[key])
    assert not np.array_equal(t569.minutiae["quality"], t500.minutiae["quality"])
    with pytest.raises(ValueError):
        ex.extract(img, 0)


def test_min_quality_filters():
    img = _read(_need("fvc2002", "DB1_B") / "101_1.tif")
    all_ = MindtctExtractor().extract(img, 500)
    some = MindtctExtractor(min_quality=0.3).extract(img, 500)
    assert 0 < len(some) < len(all_)
    assert np.all(some.minutiae["quality"] >= 30)
    with pytest.raises(FailureToEnrol, match="no minutiae with reliability"):
        MindtctExtractor(min_quality=1.0).extract(img, 500)
    with pytest.raises(ValueError):
        MindtctExtractor(min_quality=2.0).extract(img, 500)


def test_nfiq2():
    img = _read(_need("fvc2002", "DB1_B") / "101_1.tif")
    t = MindtctExtractor(compute_nfiq2=True).extract(img, 500)
    score = t.extra["nfiq2"]
    assert isinstance(score, int) and 0 < score <= 100
    assert t.native[20] == score  # the finger quality byte of the native template
    assert nfiq2_score(img, 500) == score
    with pytest.raises(ValueError):
        nfiq2_score(np.full((300, 300), 255, np.uint8))
    assert Template.from_npz_bytes(t.to_npz_bytes()).extra == {"nfiq2": score}


@pytest.mark.parametrize(
    "image",
    [
        np.full((300, 300), 255, np.uint8),  # blank
        np.full((300, 300), 128, np.uint8),  # uniform
        np.zeros((300, 300), np.uint8),
        np.full((5, 5), 128, np.uint8),  # tiny
        np.zeros((0, 300), np.uint8),  # empty
        np.full((300, 300), np.nan),  # NaN, float
        np.zeros((300, 300, 3), np.uint8),  # colour
        np.zeros((300, 300), np.uint16),
        np.zeros(300, np.uint8),  # 1-D
        [[0, 1], [2, 3]],  # not an array
    ],
    ids=["blank", "uniform", "black", "tiny", "empty", "nan", "3d", "uint16", "1d", "list"],
)
@pytest.mark.parametrize("compute_nfiq2", [False, True], ids=["plain", "nfiq2"])
def test_bad_images_fail_to_enrol(image, compute_nfiq2):
    with pytest.raises(FailureToEnrol) as info:
        MindtctExtractor(compute_nfiq2=compute_nfiq2).extract(image, 500.0)
    assert str(info.value)


# -- matching --------------------------------------------------------------------------------
def test_genuine_scores_above_impostor_scores(db1, score_matrix):
    fingers = np.array([f for f, _, _ in db1])
    same = fingers[:, None] == fingers[None, :]
    off = ~np.eye(len(db1), dtype=bool)
    genuine, impostor = score_matrix[same & off], score_matrix[~same]
    assert genuine.mean() > 3 * impostor.mean()
    for f in FINGERS:  # per finger too
        assert score_matrix[(fingers == f)[:, None] & (fingers == f)[None, :] & off].mean() > impostor.mean()
    assert np.all(score_matrix == np.round(score_matrix)) and score_matrix.min() >= 0


def test_scores_are_symmetric_and_match_nbis(db1, score_matrix):
    assert np.array_equal(score_matrix, score_matrix.T)
    # identical to nbis-py comparing the objects its extractor returned
    ex = _lib.nbis_extractor(0.0, False, 500.0)
    objs = [ex.extract_minutiae(cv2.imencode(".png", img)[1].tobytes()) for _, img, _ in db1[:6]]
    for i in range(6):
        for j in range(6):
            assert score_matrix[i, j] == objs[i].compare(objs[j])


def test_rebuilt_from_minutiae_scores_identical(db1, score_matrix):
    """Converting our minutiae back to nbis-py bytes loses nothing BOZORTH3 uses."""
    m = Bozorth3Matcher()
    plain = [_strip(t) for _, _, t in db1]
    rebuilt = np.array([m.compare_many(p, plain) for p in plain])
    assert np.array_equal(rebuilt, score_matrix)
    mixed = np.array([[m.compare(a, b) for b in plain] for _, _, a in db1])
    assert np.array_equal(mixed, score_matrix)
    for (_, _, t), p in zip(db1, plain):
        a, b = np.frombuffer(t.native, np.uint8), np.frombuffer(m.native_bytes(p), np.uint8)
        differ = np.nonzero(a != b)[0]
        assert a.size == b.size and np.all((differ - native.HEADER_SIZE) % 6 == 5)  # only the 0-63 quality bytes
        assert np.all(np.abs(a[differ].astype(int) - b[differ]) <= 1)


def test_foreign_minutiae_are_quantised_and_sorted(db1, score_matrix):
    """A template from another extractor: sub-pixel positions, free angles, any order, type 'other'."""
    rng = np.random.default_rng(1)
    m = Bozorth3Matcher()
    tpls = []
    for _, _, t in db1[:6]:
        mm = t.minutiae
        order = rng.permutation(len(mm))
        tpls.append(
            _strip(
                t,
                minutiae=make_minutiae(
                    mm["x"][order] + rng.uniform(-0.45, 0.45, len(mm)),
                    mm["y"][order] + rng.uniform(-0.45, 0.45, len(mm)),
                    mm["angle"][order] + np.deg2rad(rng.uniform(-5.5, 5.5, len(mm))),
                    type=np.zeros(len(mm)),
                    quality=mm["quality"][order],
                ),
            )
        )
    got = np.array([m.compare_many(p, tpls) for p in tpls])
    assert np.array_equal(got, score_matrix[:6, :6])


def test_few_minutiae_score_zero(db1):
    m = Bozorth3Matcher()
    _, _, full = db1[0]
    loader = _lib.template_loader()
    for n in (0, 1, 2, 5, 9):
        small = _strip(full, minutiae=full.minutiae[:n].copy())
        assert m.compare(small, full) == 0.0 and m.compare(full, small) == 0.0
        assert m.compare(small, small) == 0.0
        assert np.array_equal(m.compare_many(small, [full, small]), [0.0, 0.0])
        assert np.array_equal(m.compare_many(full, [small]), [0.0])
        if n:  # nbis-py agrees (it cannot read a template without minutiae at all)
            other = loader.load_iso_19794_2_2005(m.native_bytes(small))
            assert other.compare(loader.load_iso_19794_2_2005(full.native)) == 0


def test_compare_many_reads_the_probe_once(db1, monkeypatch, score_matrix):
    m = Bozorth3Matcher()
    tpls = [t for _, _, t in db1]
    loader = _lib.template_loader()
    calls = []

    class Counting:
        def load_iso_19794_2_2005(self, data):
            calls.append(data)
            return loader.load_iso_19794_2_2005(data)

    monkeypatch.setattr(_lib, "template_loader", lambda: Counting())
    scores = m.compare_many(tpls[0], tpls)
    assert np.array_equal(scores, score_matrix[0]) and len(calls) == len(tpls)
    assert m.compare(tpls[1], tpls[2]) == score_matrix[1, 2] and len(calls) == len(tpls)  # cached
    m.max_minutiae = 100  # another setting, read again
    m.compare(tpls[1], tpls[2])
    assert len(calls) == len(tpls) + 2
    restored = copy.deepcopy(m)  # the same __getstate__ path as pickling for IPC
    assert "_cache" not in vars(restored) and restored.max_minutiae == 100


def test_max_minutiae_prunes_by_quality(db1):
    # a template of 190 minutiae: the union of several impressions
    big = np.concatenate([t.minutiae for _, _, t in db1])[:190].copy()
    assert big.size == 190
    probe = _strip(db1[0][2], minutiae=big)
    m150, m190 = Bozorth3Matcher(), Bozorth3Matcher(max_minutiae=200)
    keep = np.sort(np.argsort(-big["quality"].astype(int), kind="stable")[:150])
    explicit = _strip(probe, minutiae=big[keep])
    refs = [t for _, _, t in db1]
    assert np.array_equal(m150.compare_many(probe, refs), m190.compare_many(explicit, refs))
    assert native.decode(m150.native_bytes(probe))[0].size == 150
    assert native.decode(m190.native_bytes(probe))[0].size == 190
    for bad in (9, 201, 150.0, True):
        with pytest.raises(ValueError):
            Bozorth3Matcher(max_minutiae=bad).compare(probe, probe)


def test_native_layout_round_trip():
    mins = make_minutiae([0, 5, 300, 16383], [7, 0, 400, 20000], np.deg2rad([0, 11.25, 191.25, 348.75]),
                         type=[1, 2, 0, 1], quality=[0, 100, 50, 63])
    data = native.encode(mins, 388, 374, finger_quality=42)
    assert data[:8] == b"FMR\x00 20\x00" and int.from_bytes(data[8:12], "big") == len(data) == 26 + 6 * 4
    assert data[14:18] == (388).to_bytes(2, "big") + (374).to_bytes(2, "big") and data[20] == 42 and data[25] == 4
    assert data[26:32] == bytes([0x40, 0x00, 0x00, 0x07, 0x00, 0x00])
    out, w, h, fq = native.decode(data)
    assert (w, h, fq) == (388, 374, 42)
    assert np.array_equal(out["x"], [0, 5, 300, 16383]) and np.array_equal(out["y"], [7, 0, 400, 16383])
    assert np.allclose(np.rad2deg(out["angle"]), [0, 11.25, 191.25, 348.75])
    assert np.array_equal(out["type"], [1, 2, 0, 1]) and np.array_equal(out["quality"], [0, 100, 51, 63])
    got = _lib.template_loader().load_iso_19794_2_2005(data).get()
    assert [(q.x(), q.y(), q.angle()) for q in got] == [(0, 7, 0.0), (5, 0, 11.25), (300, 400, 191.25), (16383, 16383, 348.75)]
    assert [q.kind() for q in got] == [nbis.MinutiaKind.RIDGE_ENDING, nbis.MinutiaKind.BIFURCATION,
                                       nbis.MinutiaKind.RIDGE_ENDING, nbis.MinutiaKind.RIDGE_ENDING]
    from bench.template import TemplateError

    for bad in (data[:20], b"XMR" + data[3:], data + b"\x00"):
        with pytest.raises(TemplateError):
            native.decode(bad)
