"""The synthetic fingerprint generator: determinism, parameter checks, ground truth that
agrees with the images, the ISO encoder, the ground-truth readers, minutiae-level
evaluation, and resuming an interrupted generation."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from bench import protocols
from bench.datasets.base import read_grayscale
from bench.synthetic import (
    aggregate,
    evaluate_minutiae,
    generate_dataset,
    is_complete,
    load_synthetic,
    make_config,
    make_finger,
    read_groundtruth,
    read_iso,
    read_xyt,
)
from bench.synthetic.dataset import INFO
from bench.synthetic.generate import COMPLETE_MARKER, impression_rng, master_rng
from bench.synthetic.minutiae import extract_minutiae
from bench.synthetic.orientation import CLASS_FREQUENCIES, draw_pattern, orientation_field
from bench.synthetic.pngio import encode_png_gray
from bench.formats import iso19794_2 as iso
from bench.formats.records import FingerView, FormatError
from bench.template import TYPE_BIFURCATION, TYPE_ENDING, Template, TemplateError, make_minutiae

SMALL = dict(fingers=2, impressions=3, width=240, height=320, seed=11)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small_set(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic") / "set"
    generate_dataset(root, jobs=1, **SMALL)
    return root


@pytest.fixture(scope="module")
def easy_finger():
    config = make_config(difficulty="easy", seed=5, impressions=2)
    return config, *make_finger(config, 1)


# -- determinism ------------------------------------------------------------------------------


def test_same_seed_gives_identical_files_and_processes_do_not_matter(small_set, tmp_path):
    again = tmp_path / "again"
    report = generate_dataset(again, jobs=2, **SMALL)
    assert report.generated_fingers == 2
    a, b = _files(small_set), _files(again)
    assert a.keys() == b.keys()
    assert len([k for k in a if k.endswith(".png") and "/" not in k]) == 6
    assert a == b


def test_different_seed_gives_different_images(small_set):
    img = read_grayscale(small_set / "2_1.png")
    other = make_config(**{**SMALL, "seed": 12})
    assert not np.array_equal(img, make_finger(other, 2, [1])[1][0].image)
    # A finger does not depend on how many fingers or impressions are generated.
    more = make_config(**{**SMALL, "fingers": 7, "impressions": 8})
    assert np.array_equal(img, make_finger(more, 2, [1])[1][0].image)


def test_random_streams_are_independent_per_finger_and_impression():
    a = master_rng(3, 1).random(4)
    assert not np.array_equal(a, master_rng(3, 2).random(4))
    assert not np.array_equal(impression_rng(3, 1, 1).random(4), impression_rng(3, 1, 2).random(4))
    assert np.array_equal(a, master_rng(3, 1).random(4))


# -- parameter validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, words",
    [
        ({"fingers": 0}, ["fingers", "1", "100000"]),
        ({"fingers": 2.5}, ["fingers", "whole number"]),
        ({"fingers": True}, ["fingers"]),
        ({"impressions": 0}, ["impressions", "1", "1000"]),
        ({"width": 100}, ["width", "128", "4096"]),
        ({"height": 127}, ["height", "128"]),
        ({"dpi": 200}, ["dpi", "250", "1000"]),
        ({"dpi": 1200}, ["dpi", "250", "1000"]),
        ({"dpi": "fine"}, ["dpi", "number"]),
        ({"noise": -0.5}, ["noise", "0", "10"]),
        ({"difficulty": 1.5}, ["difficulty", "0", "1", "easy", "hard"]),
        ({"difficulty": -0.1}, ["difficulty", "0", "1"]),
        ({"difficulty": "extreme"}, ["difficulty", "easy", "default", "hard"]),
        ({"seed": -1}, ["seed", "0"]),
        ({"jobs": 0}, ["jobs", "1"]),
    ],
)
def test_impossible_parameters_are_refused_with_their_name_and_range(tmp_path, params, words):
    with pytest.raises(ValueError) as exc:
        generate_dataset(tmp_path / "never", **{**SMALL, **params})
    message = str(exc.value)
    for word in words:
        assert word in message, message
    assert not (tmp_path / "never").exists()


def test_named_difficulties_resolve_to_numbers():
    easy, hard = make_config(difficulty="easy"), make_config(difficulty="hard")
    assert easy.difficulty < make_config().difficulty < hard.difficulty
    assert make_config(difficulty=0.3).difficulty == 0.3
    assert make_config(difficulty="0.4").difficulty == 0.4


# -- the master print ---------------------------------------------------------------------------


def test_class_proportions_are_the_natural_ones_even_in_small_sets():
    from collections import Counter

    from bench.synthetic.orientation import class_for_finger

    assert sum(CLASS_FREQUENCIES.values()) == pytest.approx(100.0)
    assert CLASS_FREQUENCIES["left_loop"] == 33.8 and CLASS_FREQUENCIES["arch"] == 3.7
    for seed in (0, 1, 2024):
        counts = Counter(class_for_finger(seed, f) for f in range(1, 101))
        for name, percent in CLASS_FREQUENCIES.items():
            assert abs(counts[name] - percent) <= 2.5, (seed, counts)
    assert class_for_finger(0, 5) == class_for_finger(0, 5) and len({class_for_finger(3, f) for f in range(1, 11)}) >= 3


def test_loop_orientation_turns_around_the_core_by_half_a_turn():
    spec = draw_pattern(np.random.default_rng(0), "left_loop", 100.0, 120.0, 1.0)
    core = spec.cores[0]
    theta = orientation_field(spec, (240, 200))
    # Walk a small circle around the core: the orientation (mod pi) turns by +pi.
    t = np.linspace(0, 2 * np.pi, 73)
    xs = np.round(core.x + 6 * np.cos(t)).astype(int)
    ys = np.round(core.y - 6 * np.sin(t)).astype(int)
    steps = np.diff(2 * theta[ys, xs])
    total = np.sum(np.angle(np.exp(1j * steps))) / 2
    assert total == pytest.approx(np.pi, abs=0.2)


def test_crossing_number_finds_minutiae_with_iso_directions():
    h, w = 100, 120
    y, x = np.mgrid[0:h, 0:w]
    inner = (x > 15) & (x < w - 15) & (y > 15) & (y < h - 15)
    theta = np.zeros((h, w))
    ridges = (y % 10) < 5
    ridges[40:45, 60:] = False  # the ridge of rows 40-44 ends at x = 59, its body to the west
    m = extract_minutiae(ridges, theta, 10.0, inner)
    assert m.size == 1 and m["type"][0] == TYPE_ENDING
    assert abs(m["x"][0] - 59) <= 2 and abs(m["y"][0] - 42) <= 1
    assert np.degrees(m["angle"][0]) == pytest.approx(180.0)  # along the ridge, away from its end
    ridges = (y % 10) < 5
    ridges[45:50, :60] = True  # two ridges merge west of x = 60: a fork opening to the east
    m = extract_minutiae(ridges, theta, 10.0, inner)
    assert m.size == 1 and m["type"][0] == TYPE_BIFURCATION
    assert np.degrees(m["angle"][0]) == pytest.approx(0.0)  # along the valley between the branches


# -- ground truth -----------------------------------------------------------------------------


def test_groundtruth_lies_in_the_visible_area(small_set):
    n = 0
    for gt_file in sorted((small_set / "groundtruth").glob("*.json")):
        gt = read_groundtruth(gt_file)
        t = gt.template
        assert gt.visible is not None and gt.visible.shape == (t.height, t.width)
        m = t.minutiae
        assert np.all((m["x"] >= 0) & (m["x"] <= t.width - 1) & (m["y"] >= 0) & (m["y"] <= t.height - 1))
        assert np.all(gt.visible[np.round(m["y"]).astype(int), np.round(m["x"]).astype(int)])
        assert set(np.unique(m["type"])) <= {TYPE_ENDING, TYPE_BIFURCATION}
        assert gt.fingerprint_class in CLASS_FREQUENCIES
        n += m.size
    assert n > 6 * 15  # 6 impressions, plenty of minutiae each


def _binarise(image: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    img = image.astype(np.float64)
    local = ndimage.uniform_filter(ndimage.gaussian_filter(img, 1.0), 15)
    return ndimage.gaussian_filter(img, 1.0) < local  # ridges are dark


def test_groundtruth_agrees_with_the_ridges_of_an_easy_impression(easy_finger):
    from skimage.morphology import skeletonize

    from bench.synthetic.minutiae import _neighbours

    config, master, impressions = easy_finger
    hits, shifted_hits, direction_ok, total = 0, 0, 0, 0
    for imp in impressions:
        ridges = _binarise(imp.image) & imp.visible
        skel = skeletonize(ridges)
        count, cn = _neighbours(skel)
        ends = np.argwhere(skel & ((cn == 1) | (cn >= 3)))  # ridge ends and forks of the image
        m = imp.minutiae
        assert m.size > 15
        for x, y, a, kind in zip(m["x"], m["y"], m["angle"], m["type"]):
            total += 1
            d = np.hypot(ends[:, 1] - x, ends[:, 0] - y)
            hits += bool(d.min() <= 6.0)
            # Control: the same test two ridge periods to the side finds far fewer.
            sx, sy = x + 18.0 * np.sin(a), y + 18.0 * np.cos(a)
            shifted_hits += bool(np.hypot(ends[:, 1] - sx, ends[:, 0] - sy).min() <= 6.0)
            # ISO direction: an ending's ridge continues ahead, a fork's valley does.
            ahead = ridges[int(round(y - 6 * np.sin(a))), int(round(x + 6 * np.cos(a)))]
            behind = ridges[int(round(y + 6 * np.sin(a))), int(round(x - 6 * np.cos(a)))]
            want = kind == TYPE_ENDING
            direction_ok += bool(ahead == want and behind != want)
    assert hits / total >= 0.85, (hits, total)
    assert shifted_hits / total < 0.5 * hits / total
    assert direction_ok / total >= 0.75, (direction_ok, total)


def test_groundtruth_files_agree(small_set):
    gt = read_groundtruth(small_set / "groundtruth" / "1_2.json")
    from_iso = read_iso(small_set / "groundtruth" / "1_2.iso")
    a, b = gt.template.minutiae, from_iso.minutiae
    assert a.size == b.size > 0
    assert np.all(np.abs(a["x"] - b["x"]) <= 0.5) and np.all(np.abs(a["y"] - b["y"]) <= 0.5)
    da = np.degrees(np.angle(np.exp(1j * (a["angle"].astype(float) - b["angle"]))))
    assert np.all(np.abs(da) <= 360 / 512 + 1e-3)
    assert np.array_equal(a["type"], b["type"])
    assert (from_iso.width, from_iso.height, from_iso.dpi) == (240, 320, 500.0)
    mask = read_grayscale(small_set / "groundtruth" / "1_2.mask.png", (240, 320))
    assert np.array_equal(mask > 127, gt.visible)
    doc = json.loads((small_set / "groundtruth" / "1_2.json").read_text())
    assert doc["finger"] == 1 and doc["impression"] == 2 and doc["image"] == "1_2.png"
    assert {"kind", "x", "y", "visible"} <= set(doc["singular_points"][0]) if doc["singular_points"] else True


def test_mindtct_finds_the_groundtruth_of_an_easy_impression(easy_finger):
    nbis = pytest.importorskip("nbis")
    config, master, impressions = easy_finger
    ex = nbis.new_nbis_extractor(
        nbis.NbisExtractorSettings(min_quality=0.0, get_center=False, check_fingerprint=False,
                                   compute_nfiq2=False, ppi=500.0)
    )
    items = []
    for imp in impressions:
        found = ex.extract_minutiae(encode_png_gray(imp.image)).get()
        t = Template(
            make_minutiae([p.x() for p in found], [p.y() for p in found], np.radians([p.angle() for p in found])),
            config.width, config.height, config.dpi,
        )
        items.append((t, Template(imp.minutiae, config.width, config.height, config.dpi), imp.visible))
    acc = aggregate(items)
    assert acc.f1 > 0.75, acc
    assert acc.angle_agreement > 0.8  # MINDTCT (nbis-py) reports ISO directions


# -- ISO/IEC 19794-2 --------------------------------------------------------------------------


def _tiny_iso_decoder(data: bytes) -> dict:
    """Independent reading of the fields, straight from the standard's layout."""
    out = {
        "magic": data[0:4], "version": data[4:8], "length": struct.unpack(">I", data[8:12])[0],
        "equipment": struct.unpack(">H", data[12:14])[0], "width": struct.unpack(">H", data[14:16])[0],
        "height": struct.unpack(">H", data[16:18])[0], "xres": struct.unpack(">H", data[18:20])[0],
        "yres": struct.unpack(">H", data[20:22])[0], "views": data[22], "reserved": data[23],
        "finger_position": data[24], "view_and_impression": data[25], "finger_quality": data[26], "n": data[27],
    }
    out["minutiae"] = []
    for i in range(out["n"]):
        o = 28 + 6 * i
        b = data[o : o + 6]
        out["minutiae"].append(
            {"type": b[0] >> 6, "x": ((b[0] & 0x3F) << 8) | b[1], "reserved": b[2] >> 6,
             "y": ((b[2] & 0x3F) << 8) | b[3], "angle": b[4], "quality": b[5]}
        )
    out["extended_length"] = struct.unpack(">H", data[28 + 6 * out["n"] : 30 + 6 * out["n"]])[0]
    return out


def test_iso_record_layout():
    m = make_minutiae(
        [10.4, 287, 0.0, 100.6], [20, 383, 5, 200.2],
        np.radians([0.0, 90.0, 359.5, 181.0]), [1, 2, 0, 1], [100, 50, 0, 7],
    )
    t = Template(m, 288, 384, 500.0)
    data = iso.encode(FingerView(t, finger_position=2, impression_type=0, finger_quality=80))
    f = _tiny_iso_decoder(data)
    assert f["magic"] == b"FMR\x00" and f["version"] == b" 20\x00"
    assert f["length"] == len(data) == 24 + 4 + 6 * 4 + 2 == t.size_bytes
    assert (f["width"], f["height"], f["xres"], f["yres"]) == (288, 384, 197, 197)
    assert (f["views"], f["reserved"], f["equipment"]) == (1, 0, 0)
    assert (f["finger_position"], f["view_and_impression"], f["finger_quality"], f["n"]) == (2, 0, 80, 4)
    assert f["extended_length"] == 0
    fields = [(q["type"], q["x"], q["y"]) for q in f["minutiae"]]
    assert fields == [(1, 10, 20), (2, 287, 383), (0, 0, 5), (1, 101, 200)]
    assert [q["angle"] for q in f["minutiae"]] == [0, 64, 0, 129]  # units of 360/256 degrees, 359.5 wraps to 0
    assert [q["quality"] for q in f["minutiae"]] == [100, 50, 0, 7]
    assert all(q["reserved"] == 0 for q in f["minutiae"])
    back = iso.decode(data).views[0]
    assert back.finger_position == 2 and back.finger_quality == 80
    assert np.array_equal(back.template.minutiae["type"], m["type"])
    assert np.allclose(np.degrees(back.template.minutiae["angle"]), [0.0, 90.0, 0.0, 181.40625])


def test_iso_encoder_refuses_what_cannot_be_stored():
    many = make_minutiae(np.arange(256), np.arange(256), np.zeros(256))
    with pytest.raises(ValueError, match="255"):
        iso.encode(Template(many, 300, 300, 500.0))
    with pytest.raises(ValueError, match="finger_quality"):
        iso.encode(FingerView(Template(many[:3], 300, 300, 500.0), finger_quality=101))


def test_iso_decoder_rejects_bad_records():
    good = iso.encode(Template(make_minutiae([1, 2], [3, 4], [0, 1]), 100, 100, 500.0))
    with pytest.raises(FormatError, match="length"):
        iso.decode(good[:-1])
    with pytest.raises(FormatError, match="identifier|format"):
        iso.decode(b"XMR" + good[3:])
    with pytest.raises(TemplateError):
        read_iso(good[:20])


def test_real_iso_records_are_read(shared_data):
    folder = shared_data / "templates" / "iso19794-2-fvc2002" / "DB1_B"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    t = read_iso(folder / "101_1.iso")
    raw = (folder / "101_1.iso").read_bytes()
    assert len(t) == raw[27] > 0 and t.dpi == 500.0
    for bad in sorted((shared_data / "templates" / "iso19794-2-invalid").glob("*.iso")):
        with pytest.raises(TemplateError, match="length"):
            read_iso(bad)


# -- NBIS .xyt ---------------------------------------------------------------------------------


def test_xyt_conversion_to_iso(tmp_path):
    path = tmp_path / "a.xyt"
    path.write_text("10 20 90 50\n0 299 350 7\n\n")
    t = read_xyt(path, width=300, height=300)
    m = t.minutiae
    assert m["x"].tolist() == [10, 0]
    assert m["y"].tolist() == [280, 1]  # origin moved from the bottom-left to the top-left
    assert np.degrees(m["angle"]).tolist() == pytest.approx([270.0, 170.0])  # turned by 180 degrees
    assert m["quality"].tolist() == [50, 7] and m["type"].tolist() == [0, 0]
    path.write_text("1 2\n")
    with pytest.raises(TemplateError, match="line 1"):
        read_xyt(path, 300, 300)


def test_real_xyt_file(shared_data):
    path = shared_data / "templates" / "nbis-fvc2000-db1b" / "xyt" / "101_1.xyt"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    raw = np.loadtxt(path, ndmin=2)
    t = read_xyt(path, width=300, height=300)  # FVC2000 DB1 images are 300 x 300
    assert len(t) == raw.shape[0] > 10
    assert np.array_equal(t.minutiae["x"], raw[:, 0].astype(np.float32))
    assert np.array_equal(t.minutiae["y"], (300 - raw[:, 1]).astype(np.float32))
    expected = np.radians(np.mod(raw[:, 2] + 180, 360))
    assert np.allclose(t.minutiae["angle"], expected, atol=1e-5)
    assert np.all((t.minutiae["x"] >= 0) & (t.minutiae["x"] < 300) & (t.minutiae["y"] > 0) & (t.minutiae["y"] <= 300))


# -- minutiae-level evaluation ----------------------------------------------------------------


def _t(x, y, angle=None, types=None, dpi=500.0):
    angle = np.zeros(len(x)) if angle is None else angle
    return Template(make_minutiae(x, y, angle, types), 400, 400, dpi)


def test_evaluation_exact_counts():
    truth = _t([50, 100, 150, 200], [50, 50, 50, 50])
    found = _t([52, 103, 150, 300, 350], [50, 50, 54, 300, 350])
    r = evaluate_minutiae(found, truth)
    assert (r.true_positives, r.false_positives, r.false_negatives) == (3, 2, 1)
    assert r.precision == pytest.approx(3 / 5) and r.recall == pytest.approx(3 / 4)
    assert r.f1 == pytest.approx(2 * 3 / (5 + 4))
    px = 25.4 / 500
    assert r.mean_distance_mm == pytest.approx((2 + 3 + 4) / 3 * px)
    assert r.median_distance_mm == pytest.approx(3 * px)
    perfect = evaluate_minutiae(truth, truth)
    assert (perfect.precision, perfect.recall, perfect.f1, perfect.mean_distance_mm) == (1.0, 1.0, 1.0, 0.0)


def test_evaluation_is_optimal_not_greedy():
    # Greedy nearest-first pairs found[0] with truth[0] (1 px) and leaves found[1] alone;
    # the optimal pairing uses both.
    truth = _t([100, 107], [100, 100])
    found = _t([101, 94], [100, 100])
    r = evaluate_minutiae(found, truth, distance_mm=0.2)  # 0.2 mm = 3.9 px... too tight for 94-100
    assert r.true_positives == 1
    r = evaluate_minutiae(found, truth, distance_mm=0.35)  # 6.9 px: 94-100 and 101-107 both fit
    assert r.true_positives == 2 and r.false_positives == 0 and r.false_negatives == 0


def test_evaluation_tolerance_is_in_millimetres():
    for dpi, expected in ((500.0, 0), (1000.0, 1)):
        truth, found = _t([100], [100], dpi=dpi), _t([110], [100], dpi=dpi)  # 10 px: 0.51 mm or 0.25 mm
        assert evaluate_minutiae(found, truth, distance_mm=0.45).true_positives == expected


def test_evaluation_angles():
    truth = _t([100, 200], [100, 200], np.radians([10, 100]), [1, 2])
    found = _t([100, 200], [100, 200], np.radians([50, 280]), [1, 1])
    r = evaluate_minutiae(found, truth)  # paired on position, angles reported
    assert r.true_positives == 2
    assert r.angle_agreement == 0.0 and r.angle_agreement_reversed == 0.5
    assert r.mean_angle_error_deg == pytest.approx((40 + 180) / 2)
    assert r.type_agreement == 0.5
    strict = evaluate_minutiae(found, truth, require_angle=True, angle_deg=45)
    assert strict.true_positives == 1 and strict.false_positives == 1
    assert evaluate_minutiae(found, truth, require_angle=True, angle_deg=30).true_positives == 0


def test_evaluation_region_and_empty_cases():
    truth = _t([100], [100])
    found = _t([100, 390], [100, 390])
    region = np.zeros((400, 400), dtype=bool)
    region[50:150, 50:150] = True
    r = evaluate_minutiae(found, truth, region=region)
    assert (r.n_found, r.false_positives, r.precision) == (1, 0, 1.0)
    none = evaluate_minutiae(_t([], []), truth)
    assert (none.true_positives, none.recall, none.false_negatives) == (0, 0.0, 1)
    assert np.isnan(none.precision) and none.to_dict()["precision"] is None
    with pytest.raises(ValueError, match="image"):
        evaluate_minutiae(Template(make_minutiae([1], [1], [0]), 300, 400, 500.0), truth)
    total = aggregate([(found, truth, region), (truth, truth)])
    assert (total.true_positives, total.n_found, total.n_truth) == (2, 2, 2)


# -- dataset on disk ----------------------------------------------------------------------------


def test_generated_set_opens_as_a_dataset(small_set):
    assert is_complete(small_set)
    ds = load_synthetic(INFO, small_set)
    assert len(ds.samples) == 6 and ds.subjects == ["1", "2"] and not ds.problems
    assert ds.info.image_size == (240, 320) and ds.info.fingers == 2
    assert ds.read_image(ds.sample("2_3")).shape == (320, 240)
    assert ds.samples[0].attributes["class"] in CLASS_FREQUENCIES
    pairs = protocols.fvc(ds)
    assert (pairs.n_genuine, pairs.n_impostor) == (2 * 3, 1)
    meta = json.loads((small_set / "synthetic.json").read_text())
    assert meta["params"]["seed"] == 11 and meta["complete"] is True
    assert len(meta["fingers"][0]["pixel_sha256"]) == 3


def test_interrupted_generation_is_detected_and_completed(small_set, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(small_set, root)
    before = _files(root)
    (root / "2_2.png").unlink()
    (root / "groundtruth" / "2_3.iso").write_bytes(b"half")  # a truncated file
    (root / COMPLETE_MARKER).unlink()
    assert not is_complete(root)
    partial = load_synthetic(INFO, root, complete=False)
    assert [p.path for p in partial.problems_of("missing")] == [str(root / "2_2.png")]
    report = generate_dataset(root, jobs=1, **SMALL)
    assert (report.generated_fingers, report.reused_fingers) == (1, 1)
    assert _files(root) == before and is_complete(root)
    # With only the final marker gone, nothing is regenerated.
    (root / COMPLETE_MARKER).unlink()
    report = generate_dataset(root, jobs=1, **SMALL)
    assert (report.generated_fingers, report.reused_fingers) == (0, 2)
    assert is_complete(root)
    # A complete set is reused as it is.
    assert generate_dataset(root, jobs=1, **SMALL).generated_fingers == 0


def test_a_folder_of_another_set_is_not_mixed(small_set, tmp_path):
    with pytest.raises(ValueError, match="seed=11 instead of 12"):
        generate_dataset(small_set, jobs=1, **{**SMALL, "seed": 12})
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        generate_dataset(tmp_path, jobs=1, **SMALL)


def test_nbis_check_summarises_a_set(small_set):
    pytest.importorskip("nbis")
    from bench.synthetic import nbis_check

    out = nbis_check(small_set, jobs=1)
    assert (out["images"], out["fingers"], out["impressions"]) == (6, 2, 3)
    assert out["eer"]["n_genuine"] == 6 and out["eer"]["n_impostor"] == 1
    assert out["genuine_scores"]["median"] > out["impostor_scores"]["median"]
    acc = out["mindtct_vs_groundtruth"]
    assert acc["n_truth"] > 0 and 0.5 < acc["f1"] <= 1.0


def test_custom_and_embedded_sets_never_share_a_run_folder():
    """A custom set's runs go to ``synthetic-<digest>``, so the next default run finds no run
    of another configuration in ``runs/synthetic/...``."""
    from dataclasses import replace as dc_replace

    from bench.datasets.base import Dataset
    from bench.synthetic.dataset import DEFAULT_PARAMS, run_folder_name
    from bench.synthetic.generate import make_config

    def as_dataset(**params) -> Dataset:
        config = make_config(**{**DEFAULT_PARAMS, **params})
        return Dataset(info=INFO, root=Path("."), samples=[], problems=[],
                       params={"validate": "header", **{f"synthetic_{k}": v for k, v in config.to_dict().items()}})

    assert run_folder_name(as_dataset()) == "synthetic"
    hard = as_dataset(fingers=100, difficulty="hard", seed=7)
    other_seed = as_dataset(seed=1)
    names = {run_folder_name(hard), run_folder_name(other_seed)}
    assert len(names) == 2 and all(n.startswith("synthetic-") for n in names)
    assert run_folder_name(hard) == f"synthetic-{make_config(**{**DEFAULT_PARAMS, 'fingers': 100, 'difficulty': 'hard', 'seed': 7}).digest()}"
    folder = Dataset(info=dc_replace(INFO, name="folder"), root=Path("."), samples=[], problems=[], params={})
    assert run_folder_name(folder) == "folder"
