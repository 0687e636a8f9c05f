"""The classic extractor: angle convention, real images, resolution scaling, bad input."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from bench.plugins import Extractor, FailureToEnrol, get_params
from bench.template import MINUTIA_DTYPE, TYPE_BIFURCATION, TYPE_ENDING, Template
from extractors.classic import ClassicExtractor
from extractors.classic.minutiae import to_iso_angle

FVC_SETS = [("fvc2000", "DB1_B", 500), ("fvc2000", "DB2_B", 500), ("fvc2000", "DB3_B", 500),
            ("fvc2000", "DB4_B", 500), ("fvc2002", "DB1_B", 500), ("fvc2002", "DB2_B", 569),
            ("fvc2002", "DB3_B", 500), ("fvc2002", "DB4_B", 500)]


def fvc_image(root, year: str, db: str, finger: int = 101, impression: int = 1) -> np.ndarray:
    img = cv2.imread(str(root / year / db / f"{finger}_{impression}.tif"), cv2.IMREAD_GRAYSCALE)
    assert img is not None
    return img


def synthetic_minutia(kind: int, iso_angle: float, size: int = 256, period: float = 10.0) -> np.ndarray:
    """Parallel ridges with one minutia at the centre, pointing at ``iso_angle``.

    In the minutia's frame (u along its ISO direction, v across), the phase
    2 pi v / period + atan2(v, u) gains one extra period ahead of the centre (u > 0).
    With dark ridges where cos(phase) > 0, a ridge starts there and runs ahead: a ridge
    ending whose ISO direction points into the ridge, i.e. along +u. Inverting the gray
    levels makes the extra line a valley: a bifurcation whose branches open along +u.
    """
    c = (size - 1) / 2.0
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    dx, dy = xx - c, -(yy - c)  # y up, so that ISO angles are ordinary angles
    u = dx * math.cos(iso_angle) + dy * math.sin(iso_angle)
    v = -dx * math.sin(iso_angle) + dy * math.cos(iso_angle)
    wave = np.cos(2 * np.pi * v / period + np.arctan2(v, u))
    sign = -1.0 if kind == TYPE_ENDING else 1.0
    return np.clip(128 + sign * 100 * wave, 0, 255).astype(np.uint8)


def angle_difference(a: float, b: float) -> float:
    return abs((a - b + math.pi) % (2 * math.pi) - math.pi)


@pytest.fixture(scope="module")
def extractor() -> ClassicExtractor:
    return ClassicExtractor()


# ------------------------------------------------------------------ angle convention
@pytest.mark.parametrize("kind", [TYPE_ENDING, TYPE_BIFURCATION])
@pytest.mark.parametrize("iso_deg", [0, 60, 135, 200, 270, 315])
def test_iso_direction_on_synthetic_minutia(extractor, kind, iso_deg):
    """ISO/IEC 19794-2: an ending points into its ridge, a bifurcation into its fork."""
    img = synthetic_minutia(kind, math.radians(iso_deg))
    t = extractor.extract(img, 500)
    m = t.minutiae
    c = (img.shape[0] - 1) / 2.0
    d = np.hypot(m["x"] - c, m["y"] - c)
    i = int(np.argmin(d))
    assert d[i] < 6, f"no minutia near the centre: {m}"
    assert m["type"][i] == kind
    assert math.degrees(angle_difference(float(m["angle"][i]), math.radians(iso_deg))) < 15
    # Nothing else of note on a clean pattern.
    assert np.sum(d < 60) == 1


def test_iso_angle_conversion():
    # Image coordinates have y down: a direction pointing up the image is +pi/2 in ISO.
    assert to_iso_angle(np.array([-np.pi / 2]))[0] == pytest.approx(np.pi / 2)
    assert to_iso_angle(np.array([0.0]))[0] == 0.0
    assert to_iso_angle(np.array([np.pi / 4]))[0] == pytest.approx(7 * np.pi / 4)


# ------------------------------------------------------------------------ real images
@pytest.mark.parametrize("year,db,dpi", FVC_SETS)
def test_real_images_give_plausible_templates(shared_data, extractor, year, db, dpi):
    img = fvc_image(shared_data, year, db, 102, 2)
    steps = extractor.run_pipeline(img, dpi)
    t = extractor.extract(img, dpi)
    m = t.minutiae
    assert isinstance(t, Template) and m.dtype == MINUTIA_DTYPE
    assert (t.width, t.height, t.dpi) == (img.shape[1], img.shape[0], dpi)
    assert 15 <= len(t) <= 100
    assert np.all((m["angle"] >= 0) & (m["angle"] < 2 * np.pi))
    assert set(np.unique(m["type"])) <= {TYPE_ENDING, TYPE_BIFURCATION}
    assert np.all(m["quality"] <= 100) and m["quality"].max() > 0
    # Every minutia lies inside the foreground, away from its border.
    xi, yi = np.round(m["x"]).astype(int), np.round(m["y"]).astype(int)
    assert np.all(steps.mask[yi, xi])
    dist = cv2.distanceTransform(np.pad(steps.mask.astype(np.uint8), 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    assert np.all(dist[yi, xi] >= extractor.border_mm * dpi / 25.4 - 0.5)
    # Ridge period within the plausible band for fingers (about 0.4-0.6 mm).
    period_mm = 25.4 / dpi / steps.frequency
    assert 0.3 < period_mm < 0.7


def test_extraction_is_deterministic(shared_data, extractor):
    img = fvc_image(shared_data, "fvc2002", "DB1_B")
    a, b = extractor.extract(img, 500), extractor.extract(img.copy(), 500)
    assert np.array_equal(a.minutiae, b.minutiae)


def _match_in_mm(a: Template, b: Template, tol_mm: float, tol_deg: float) -> float:
    """Share of a's minutiae with a minutia of b within tol_mm and tol_deg."""
    pa = np.stack([a.minutiae["x"], a.minutiae["y"]], 1) * 25.4 / a.dpi
    pb = np.stack([b.minutiae["x"], b.minutiae["y"]], 1) * 25.4 / b.dpi
    d = np.hypot(*(pa[:, None, :] - pb[None, :, :]).transpose(2, 0, 1))
    da = np.abs((a.minutiae["angle"][:, None] - b.minutiae["angle"][None, :] + np.pi) % (2 * np.pi) - np.pi)
    ok = (d < tol_mm) & (da < math.radians(tol_deg))
    return float(ok.any(axis=1).mean())


def test_resolution_scaling_keeps_minutiae_in_millimetres(shared_data, extractor):
    img = fvc_image(shared_data, "fvc2002", "DB1_B", 103, 1)
    scale = 569 / 500
    big = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    at_500 = extractor.extract(img, 500)
    at_569 = extractor.extract(big, 569)
    assert 0.75 < len(at_569) / len(at_500) < 1.33
    assert _match_in_mm(at_500, at_569, 0.3, 20) > 0.6
    assert _match_in_mm(at_569, at_500, 0.3, 20) > 0.6


def test_input_types_are_converted(shared_data, extractor):
    img = fvc_image(shared_data, "fvc2002", "DB3_B")
    ref = extractor.extract(img, 500).minutiae
    rgb = np.stack([img, img, img], axis=2)
    rgba = np.concatenate([rgb, np.full(img.shape + (1,), 255, np.uint8)], axis=2)
    for variant in (rgb, rgba, img[:, :, None], img.astype(np.float64) / 255.0,
                    img.astype(np.uint16) * 257, img.astype(np.float32)):
        got = extractor.extract(variant, 500).minutiae
        assert len(got) == pytest.approx(len(ref), abs=2)
        assert _match_in_mm(Template(ref, img.shape[1], img.shape[0], 500),
                            Template(got, img.shape[1], img.shape[0], 500), 0.1, 10) > 0.9


# ------------------------------------------------------------------------ bad input
BAD_IMAGES = {
    "blank": (np.full((300, 300), 255, np.uint8), "blank or uniform"),
    "uniform": (np.full((300, 300), 97, np.uint8), "blank or uniform"),
    "tiny": (np.random.default_rng(0).integers(0, 256, (20, 20)).astype(np.uint8), "too small"),
    "huge": (np.broadcast_to(np.uint8(128), (5000, 5000)), "too large"),
    "nan": (np.where(np.eye(300, dtype=bool), np.nan, 0.5), "NaN"),
    "infinite": (np.full((300, 300), np.inf), "NaN or infinite"),
    "empty": (np.zeros((0, 300), np.uint8), "empty"),
    "one-dimensional": (np.zeros(90000, np.uint8), "2-D"),
    "four channels last but 5-D": (np.zeros((1, 300, 300, 1), np.uint8), "2-D"),
    "complex": (np.zeros((300, 300), complex), "pixel type"),
    "strings": (np.full((40, 40), "a"), "pixel type"),
    "not an array": (None, "pixel type"),
    "white noise": (np.random.default_rng(1).integers(0, 256, (300, 300)).astype(np.uint8), "ridge"),
}


@pytest.mark.parametrize("name", list(BAD_IMAGES))
def test_bad_images_fail_to_enrol(extractor, name):
    image, message = BAD_IMAGES[name]
    with pytest.raises(FailureToEnrol, match=message):
        extractor.extract(image, 500)


@pytest.mark.parametrize("dpi", [0, -500, float("nan"), float("inf"), "500 dpi", None, 1e7])
def test_bad_resolution_fails_to_enrol(shared_data, extractor, dpi):
    img = fvc_image(shared_data, "fvc2002", "DB1_B")
    with pytest.raises(FailureToEnrol, match="resolution"):
        extractor.extract(img, dpi)


def test_half_blank_image_still_enrols(shared_data, extractor):
    img = fvc_image(shared_data, "fvc2002", "DB1_B").copy()
    img[:, : img.shape[1] // 2] = 255
    t = extractor.extract(img, 500)
    assert len(t) > 5
    assert np.all(t.minutiae["x"] > img.shape[1] // 2)


# ------------------------------------------------------------------------ interface
def test_plugin_interface_and_params():
    ex = ClassicExtractor(border_mm=0.6, gabor_orientations=12)
    assert isinstance(ex, Extractor)
    params = get_params(ex)
    assert params["border_mm"] == 0.6 and params["gabor_orientations"] == 12
    assert get_params(ClassicExtractor(**params)) == params
    assert ex.template_format == "minutiae" and isinstance(ex.version, str)


# ------------------------------------------------------------------ robustness stages
def _ridges(size: int = 160, period: float = 10.0, angle: float = 0.6) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    return np.cos(2 * np.pi * (xx * math.cos(angle) + yy * math.sin(angle)) / period).astype(np.float32)


def test_reliability_separates_ridges_from_noise():
    """A ridge pattern keeps most of its energy through the oriented filters, noise very little."""
    from extractors.classic.enhancement import gabor_enhance, reliability

    size, period, angle = 160, 10.0, 0.6
    mask = np.ones((size, size), dtype=bool)
    ridges = _ridges(size, period, angle)
    noise = np.random.default_rng(0).standard_normal((size, size)).astype(np.float32)
    ridge_orientation = np.full((size, size), np.mod(angle + np.pi / 2, np.pi), dtype=np.float32)
    inner = (slice(30, -30), slice(30, -30))
    for image, low, high in ((ridges, 0.3, 1.0), (noise, 0.0, 0.08)):
        enhanced = gabor_enhance(image, mask, ridge_orientation, 1 / period, 16, 0.45 * period, 0.6 * period)
        r = reliability(enhanced, image, period)
        assert low <= float(np.median(r[inner])) <= high


def test_refined_mask_drops_noise_and_keeps_ridges():
    """Half ridges, half noise of the same contrast: only the ridge half stays foreground."""
    from extractors.classic.segmentation import refine_mask

    size = 160
    mask = np.ones((size, size), dtype=bool)
    rel = np.full((size, size), 0.02, dtype=np.float32)
    rel[:, : size // 2] = 0.4
    refined = refine_mask(mask, rel, 0.08, 8.0)
    assert refined[:, : size // 2 - 8].all()
    assert not refined[:, size // 2 + 8 :].any()
    assert refine_mask(mask, rel, 0.0, 8.0) is mask  # threshold 0: unchanged


def test_endings_made_by_the_mask_edge_are_dropped():
    from extractors.classic.minutiae import BIFURCATION, ENDING, Candidates, remove_at_mask_edge

    mask = np.zeros((100, 100), dtype=bool)
    mask[:, :60] = True  # foreground on the left, edge at x = 60
    # Ending at x = 55 pointing left (into its ridge): the ridge would continue right,
    # out of the mask -> made by the edge. The same ending pointing right, a ridge
    # ending inside, and a bifurcation by the edge stay.
    c = Candidates(x=np.array([55, 55, 30, 55], np.float32), y=np.full(4, 50, np.float32),
                   angle=np.array([np.pi, 0, np.pi, np.pi], np.float32),
                   kind=np.array([ENDING, ENDING, ENDING, BIFURCATION], np.uint8),
                   quality=np.zeros(4, np.float32))
    assert remove_at_mask_edge(c, mask, 10.0).tolist() == [False, True, True, True]
    assert remove_at_mask_edge(c, mask, 0.0).all()


def test_quality_follows_reliability_and_border():
    from extractors.classic.minutiae import ENDING, Candidates, minutia_quality

    coherence = np.full((50, 50), 0.81, dtype=np.float32)
    rel = np.zeros((50, 50), dtype=np.float32)
    rel[:, 25:] = 0.5
    c = Candidates(x=np.array([10, 40, 40], np.float32), y=np.full(3, 20, np.float32),
                   angle=np.zeros(3, np.float32), kind=np.full(3, ENDING, np.uint8), quality=np.zeros(3, np.float32))
    q = minutia_quality(c, coherence, np.array([20.0, 20.0, 5.0]), 20.0, rel)
    assert q[0] == 0  # no reliable ridge pattern
    assert q[1] == pytest.approx(90, abs=0.1)  # sqrt(0.81 * 1)
    assert q[2] == pytest.approx(45, abs=0.1)  # half-way to full border distance: times sqrt(0.25)


def test_pipeline_keeps_minutiae_off_a_noisy_rim(extractor):
    """A ridge disc inside a ring of noise as contrasted as the ridges: the ring is not
    foreground (beyond the filters' reach), so no minutia lies in it."""
    size, period = 320, 10.0
    yy, xx = np.mgrid[0:size, 0:size]
    r = np.hypot(xx - size / 2, yy - size / 2)
    noise = np.random.default_rng(1).standard_normal((size, size))
    img = np.full((size, size), 200.0)
    disc, ring = r < 100, (r >= 100) & (r < 150)
    img[disc] = 128 + 80 * _ridges(size, period, 0.3)[disc]
    img[ring] = 128 + 80 * np.clip(noise[ring], -1.5, 1.5)
    steps = extractor.run_pipeline(np.clip(img, 0, 255).astype(np.uint8), 500)
    assert steps.coarse_mask[ring].mean() > 0.5  # contrast alone takes the ring in
    # The refined mask stops within about two ridge periods of the disc.
    assert steps.mask[ring & (r >= 100 + 2 * period)].mean() < 0.02
    c = steps.candidates
    assert np.all(np.hypot(c.x - size / 2, c.y - size / 2) < 110)
