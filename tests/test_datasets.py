"""Tests of the dataset layer: the registry, the loaders, and the problems they report.

Tests marked as needing real data read the public datasets from ``../shared/datasets``
relative to the project root (or from the folder named by FINGERBENCH_TEST_DATA) and skip
when they are absent. Bad input is built in pytest's temporary folders from a few copied
real files or from small synthetic images.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from bench import protocols
from bench.datasets import (
    Dataset,
    DatasetError,
    DatasetInfo,
    Problem,
    available,
    load_plugins,
    open_dataset,
    probe_image,
    registration,
    resolve_root,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FINGERBENCH_TEST_DATA") or PROJECT_ROOT.parent / "shared" / "datasets")
needs_data = pytest.mark.skipif(
    not (DATA / "fvc2002" / "DB1_B").is_dir(),
    reason=f"real fingerprint data not found at {DATA} (set FINGERBENCH_TEST_DATA to the shared datasets folder)",
)
needs_socofing = pytest.mark.skipif(
    not (DATA / "socofing-subset" / "Real").is_dir(),
    reason=f"SOCOFing subset not found at {DATA / 'socofing-subset'}",
)

B_SETS = {
    "fvc2000-db1-b": ("fvc2000/DB1_B", 500, (300, 300)),
    "fvc2000-db2-b": ("fvc2000/DB2_B", 500, (256, 364)),
    "fvc2000-db3-b": ("fvc2000/DB3_B", 500, (448, 478)),
    "fvc2000-db4-b": ("fvc2000/DB4_B", 500, (240, 320)),
    "fvc2002-db1-b": ("fvc2002/DB1_B", 500, (388, 374)),
    "fvc2002-db2-b": ("fvc2002/DB2_B", 569, (296, 560)),
    "fvc2002-db3-b": ("fvc2002/DB3_B", 500, (300, 300)),
    "fvc2002-db4-b": ("fvc2002/DB4_B", 500, (288, 384)),
}


@pytest.fixture(autouse=True)
def _no_data_env(monkeypatch):
    monkeypatch.delenv("FINGERBENCH_DATA", raising=False)


def kinds(ds: Dataset) -> dict[str, list[Problem]]:
    out: dict[str, list[Problem]] = {}
    for p in ds.problems:
        out.setdefault(p.kind, []).append(p)
    return out


def write_image(path: Path, width: int, height: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, size=(height, width), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img), path
    return path


# ------------------------------------------------------------------ registry


def test_registry_names_and_metadata():
    names = available()
    fvc = [n for n in names if n.startswith("fvc")]
    assert len(fvc) == 24
    for year in (2000, 2002, 2004):
        for db in (1, 2, 3, 4):
            for s in "ab":
                assert f"fvc{year}-db{db}-{s}" in names
    for n in ("socofing-real", "socofing-altered-easy", "socofing-altered-medium",
              "socofing-altered-hard", "nist-sd4", "nist-sd302", "folder"):
        assert n in names
    assert all(n == n.lower() and " " not in n and "_" not in n for n in names)
    assert names["fvc2002-db2-a"].dpi == 569
    assert names["fvc2004-db3-b"].dpi == 512
    assert names["fvc2004-db1-a"].dpi == 500
    assert names["fvc2004-db1-a"].image_size == (640, 480)
    assert names["fvc2000-db3-b"].image_size == (448, 478)
    assert names["fvc2002-db1-a"].fingers == 100 and names["fvc2002-db1-b"].fingers == 10
    assert names["fvc2000-db1-b"].default_subdir == "fvc2000/DB1_B"
    assert "fvc" in names["fvc2000-db1-b"].protocols and "all-pairs" in names["fvc2000-db1-b"].protocols
    assert "TPAMI" in names["fvc2000-db1-a"].citation or "PAMI 24(3)" in names["fvc2000-db1-a"].citation
    assert "PAMI 28(1)" in names["fvc2004-db2-b"].citation
    assert names["nist-sd4"].image_size == (512, 512)
    assert names["socofing-real"].image_size is None


def test_unknown_name_suggests_close_match():
    with pytest.raises(DatasetError, match=r"did you mean 'fvc2002-db1-b'"):
        open_dataset("fvc2002-db1b")
    with pytest.raises(DatasetError, match="unknown dataset"):
        open_dataset("no-such-thing-at-all")


def test_names_forgive_case_and_underscores():
    assert registration("FVC2002_DB1_B").info.name == "fvc2002-db1-b"


def test_no_location_says_which_options_exist():
    with pytest.raises(DatasetError) as err:
        open_dataset("fvc2002-db1-b")
    msg = str(err.value)
    assert "root=" in msg and "data_root=" in msg and "FINGERBENCH_DATA" in msg
    assert "--data-root" in msg and "--dataset-path" in msg


def test_nonexistent_root_is_named(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetError, match=str(missing)):
        open_dataset("fvc2002-db1-b", root=missing)
    with pytest.raises(DatasetError, match="does not exist"):
        open_dataset("fvc2002-db1-b", data_root=missing)


def test_empty_root_is_named(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match=f"{empty}.* is empty"):
        open_dataset("fvc2002-db1-b", root=empty)


def test_data_root_without_the_dataset(tmp_path):
    with pytest.raises(DatasetError, match=r"fvc2002/DB1_B"):
        open_dataset("fvc2002-db1-b", data_root=tmp_path)


def test_unknown_parameter_is_refused(tmp_path):
    write_image(tmp_path / "101_1.tif", 388, 374)
    with pytest.raises(DatasetError, match="takes no parameter 'colour'"):
        open_dataset("fvc2002-db1-b", root=tmp_path, colour=True)
    with pytest.raises(DatasetError, match="validate must be one of"):
        open_dataset("fvc2002-db1-b", root=tmp_path, validate="sometimes")


def test_plugins_from_entry_points(tmp_path, caplog):
    write_image(tmp_path / "a_1.png", 20, 20)

    def loader(info, root, *, flavour="plain"):
        from bench.datasets.base import Sample

        samples = [Sample("a_1", "a", 1, root / "a_1.png", info.dpi, {"flavour": flavour})]
        return Dataset(info=info, root=root, samples=samples, params={"flavour": flavour})

    info = DatasetInfo(
        name="toy-plugin-db", title="Toy", sensor="none", dpi=500.0, image_size=None, fingers=1,
        impressions=1, licence="", citation="", url="", protocols=("all-pairs",), default_subdir="toy",
    )
    good = SimpleNamespace(name="toy", value="toy_pkg:datasets", load=lambda: (lambda: [(info, loader)]))
    broken = SimpleNamespace(name="broken", value="broken_pkg:datasets",
                             load=lambda: (_ for _ in ()).throw(ImportError("no module broken_pkg")))
    clash = SimpleNamespace(name="clash", value="clash:datasets",
                            load=lambda: (lambda: [(available()["fvc2002-db1-b"], loader)]))
    try:
        assert load_plugins([good, broken, clash]) == ["toy-plugin-db"]
        assert "broken" in caplog.text and "already registered" in caplog.text
        assert "toy-plugin-db" in available()
        ds = open_dataset("toy-plugin-db", root=tmp_path, flavour="spicy")
        assert ds.samples[0].attributes["flavour"] == "spicy"
        (tmp_path / "data" / "TOY").mkdir(parents=True)
        assert resolve_root(info, data_root=tmp_path / "data") == tmp_path / "data" / "TOY"
    finally:
        from bench.datasets import registry

        registry._registry.pop("toy-plugin-db", None)


def test_register_before_first_use_keeps_builtins(monkeypatch, tmp_path):
    from bench.datasets import registry

    monkeypatch.setattr(registry, "_registry", {})
    monkeypatch.setattr(registry, "_builtins_loaded", False)
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    info = DatasetInfo(
        name="early-db", title="Early", sensor="none", dpi=500.0, image_size=None, fingers=None,
        impressions=None, licence="", citation="", url="", protocols=(), default_subdir="early",
    )
    registry.register(info, lambda info, root: Dataset(info=info, root=root, samples=[]))
    names = available()
    assert "early-db" in names and "fvc2002-db1-b" in names
    assert registry.registration("early-db").origin == "registered at run time"
    with pytest.raises(DatasetError, match="already registered"):
        registry.register(info, lambda info, root: None)
    with pytest.raises(DatasetError, match="lowercase"):
        registry.register(DatasetInfo(**{**info.__dict__, "name": "Bad Name"}), lambda info, root: None)


# ------------------------------------------------------------------ real data


@needs_data
@pytest.mark.parametrize("name", sorted(B_SETS))
def test_shared_b_sets_open_clean(name, monkeypatch):
    import bench.datasets.base as base_module
    import bench.datasets.imagecheck as imagecheck

    subdir, dpi, size = B_SETS[name]
    decoded = []  # opening (validate="full") decodes every image once, and only once
    for module in (base_module, imagecheck):
        real = module.read_grayscale
        monkeypatch.setattr(module, "read_grayscale",
                            lambda path, *a, real=real, **k: decoded.append(Path(path)) or real(path, *a, **k))
    ds = open_dataset(name, data_root=DATA)
    assert sorted(decoded) == sorted(s.path for s in ds.samples)
    assert ds.root == (DATA / subdir).absolute()
    assert len(ds.samples) == 80
    assert len(ds.subjects) == 10
    assert ds.problems == []
    assert ds.info.dpi == dpi and all(s.dpi == dpi for s in ds.samples)
    assert ds.info.image_size == size
    s = ds.sample("101_1")
    assert (s.subject, s.impression, s.path.name) == ("101", 1, "101_1.tif")
    img = ds.read_image(s)
    assert img.dtype == np.uint8 and img.shape == (size[1], size[0])
    summary = ds.describe()
    json.dumps(summary)
    assert summary["samples"] == 80 and summary["subjects"] == 10 and summary["problems"] == 0


@needs_data
def test_root_wins_over_data_root_and_env(tmp_path, monkeypatch):
    monkeypatch.setenv("FINGERBENCH_DATA", str(tmp_path))
    ds = open_dataset("fvc2000-db1-b", root=DATA / "fvc2000" / "DB1_B", data_root=tmp_path)
    assert len(ds.samples) == 80
    monkeypatch.setenv("FINGERBENCH_DATA", str(DATA))
    assert open_dataset("fvc2002-db3-b").root == (DATA / "fvc2002" / "DB3_B").absolute()


@needs_socofing
def test_socofing_real_subset():
    ds = open_dataset("socofing-real", root=DATA / "socofing-subset")
    assert ds.problems == []
    assert len(ds.samples) == 200 and len(ds.subjects) == 200
    s = ds.sample("1_Left_index_Real")
    assert s.subject == "1_Left_index" and s.impression == 1
    assert s.attributes["gender"] == "M" and s.attributes["hand"] == "Left"
    assert s.attributes["alteration"] is None and s.attributes["role"] == "reference"
    assert ds.info.dpi == 500 and ds.info.image_size is None


@needs_socofing
@pytest.mark.parametrize("level,count", [("easy", 590), ("medium", 566), ("hard", 475)])
def test_socofing_altered_subset(level, count):
    ds = open_dataset(f"socofing-altered-{level}", data_root=DATA)
    assert ds.problems == []
    probes = [s for s in ds.samples if s.attributes["role"] == "probe"]
    refs = [s for s in ds.samples if s.attributes["role"] == "reference"]
    assert len(probes) == count and len(refs) == 200
    assert {s.attributes["alteration"] for s in probes} == {"CR", "Obl", "Zcut"}
    assert all(s.attributes["level"] == level for s in probes)
    pl = protocols.socofing(ds, impostors_per_probe=3, seed=1)
    mated = [(p.probe, p.reference) for p in pl.pairs if p.genuine]
    nonmated = [(p.probe, p.reference) for p in pl.pairs if not p.genuine]
    by_id = {s.id: s for s in ds.samples}
    assert len(mated) == count
    assert all(by_id[p].subject == by_id[r].subject for p, r in mated)
    assert len(nonmated) == 3 * count
    assert all(by_id[p].subject != by_id[r].subject for p, r in nonmated)
    assert all(by_id[r].attributes["role"] == "reference" for _, r in mated + nonmated)
    assert all(s.attributes.get("reference_only") for s in refs)
    assert not any(s.attributes.get("reference_only") for s in probes)
    again = protocols.socofing(ds, impostors_per_probe=3, seed=1)
    assert [(p.probe, p.reference) for p in again.pairs] == [(p.probe, p.reference) for p in pl.pairs]


@needs_socofing
def test_socofing_odd_names_and_missing_real(tmp_path):
    root = tmp_path / "SOCOFing"
    src = DATA / "socofing-subset"
    (root / "Real").mkdir(parents=True)
    (root / "Altered" / "Altered-Easy").mkdir(parents=True)
    shutil.copy(src / "Real" / "1__M_Left_index_finger.BMP", root / "Real" / "1__M_Left_index_finger.BMP")
    shutil.copy(src / "Real" / "2__F_Left_index_finger.BMP", root / "Real" / "2_f_left_Index_finger.bmp")
    shutil.copy(src / "Real" / "3__M_Left_index_finger.BMP", root / "Real" / "3__M_Left_index.BMP")
    shutil.copy(src / "Real" / "4__M_Left_index_finger.BMP", root / "Real" / "readme-4.BMP")
    for alt in ("CR", "Obl"):
        name = f"1__M_Left_index_finger_{alt}.BMP"
        shutil.copy(src / "Altered" / "Altered-Easy" / name, root / "Altered" / "Altered-Easy" / name)
    shutil.copy(src / "Altered" / "Altered-Easy" / "5__M_Left_index_finger_Zcut.BMP",
                root / "Altered" / "Altered-Easy" / "5__M_Left_index_finger_Zcut.BMP")
    real = open_dataset("socofing-real", data_root=tmp_path)
    assert sorted(s.subject for s in real.samples) == ["1_Left_index", "2_Left_index", "3_Left_index"]
    (extra,) = kinds(real)["extra"]
    assert "readme-4.BMP" in extra.message
    ds = open_dataset("socofing-altered-easy", root=root)
    (missing,) = kinds(ds)["missing"]
    assert "5__M_Left_index_finger.BMP" in missing.message
    ref5 = ds.sample("5_Left_index_Real")
    assert ref5.path is None
    mated = [(p.probe, p.reference) for p in protocols.socofing(ds).pairs if p.genuine]
    assert ("5_Left_index_Zcut", "5_Left_index_Real") in mated and len(mated) == 3


# ------------------------------------------------------------------ bad input (FVC)


@pytest.fixture
def fvc_copy(tmp_path) -> Path:
    """A private copy of FVC2002 DB1 set B; synthetic 388x374 images where the real data
    is absent, so that the checks of bad input run everywhere."""
    dst = tmp_path / "DB1_B"
    if (DATA / "fvc2002" / "DB1_B").is_dir():
        shutil.copytree(DATA / "fvc2002" / "DB1_B", dst)
        for f in dst.iterdir():
            f.chmod(0o644)
    else:
        for finger in range(101, 111):
            for impression in range(1, 9):
                write_image(dst / f"{finger}_{impression}.tif", 388, 374, seed=finger * 10 + impression)
    return dst


def test_truncated_image_is_unreadable(fvc_copy):
    f = fvc_copy / "101_2.tif"
    f.write_bytes(f.read_bytes()[:40000])
    ds = open_dataset("fvc2002-db1-b", root=fvc_copy)
    (p,) = ds.problems
    assert p.kind == "unreadable" and "101_2.tif" in p.message and "truncated" in p.message
    s = ds.sample("101_2")
    assert s.path == f and s.attributes["problem"] == "unreadable"
    assert len(ds.samples) == 80


def test_truncated_image_found_by_header_check(fvc_copy):
    f = fvc_copy / "105_5.tif"
    f.write_bytes(f.read_bytes()[:-10])
    (p,) = open_dataset("fvc2002-db1-b", root=fvc_copy, validate="header").problems
    assert p.kind == "unreadable" and "105_5.tif" in p.message


def test_empty_file_is_unreadable(fvc_copy):
    (fvc_copy / "102_2.tif").write_bytes(b"")
    (p,) = open_dataset("fvc2002-db1-b", root=fvc_copy).problems
    assert p.kind == "unreadable" and "102_2.tif" in p.message and "empty" in p.message


def test_missing_file_keeps_the_sample(fvc_copy):
    (fvc_copy / "101_3.tif").unlink()
    ds = open_dataset("fvc2002-db1-b", root=fvc_copy)
    (p,) = ds.problems
    assert p.kind == "missing" and "101_3.tif" in p.message
    assert len(ds.samples) == 80 and ds.sample("101_3").path is None


def test_extra_files_are_reported(fvc_copy):
    (fvc_copy / "notes.txt").write_text("scanned on a Tuesday")
    shutil.copy(fvc_copy / "101_1.tif", fvc_copy / "5_1.tif")
    ds = open_dataset("fvc2002-db1-b", root=fvc_copy)
    found = kinds(ds)
    assert set(found) == {"extra"}
    messages = " ".join(p.message for p in found["extra"])
    assert "notes.txt" in messages and "5_1.tif" in messages
    assert len(ds.samples) == 80


def test_duplicate_is_reported(fvc_copy):
    img = cv2.imread(str(fvc_copy / "101_4.tif"), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(fvc_copy / "101_4.png"), img)
    ds = open_dataset("fvc2002-db1-b", root=fvc_copy)
    (p,) = ds.problems
    assert p.kind == "duplicate" and "101_4.png" in p.message and "101_4.tif" in p.message
    assert ds.sample("101_4").path.name == "101_4.tif"


def test_wrong_size_is_reported(fvc_copy):
    write_image(fvc_copy / "101_5.tif", 100, 120)
    ds = open_dataset("fvc2002-db1-b", root=fvc_copy)
    (p,) = ds.problems
    assert p.kind == "wrong_size" and "101_5.tif" in p.message and "100x120" in p.message
    assert ds.sample("101_5").attributes["problem"] == "wrong_size"


def test_converted_png_set_is_accepted(fvc_copy):
    for f in list(fvc_copy.glob("*.tif")):
        cv2.imwrite(str(f.with_suffix(".png")), cv2.imread(str(f), cv2.IMREAD_GRAYSCALE))
        f.unlink()
    ds = open_dataset("fvc2002-db1-b", root=fvc_copy)
    assert ds.problems == [] and ds.sample("110_8").path.suffix == ".png"


def test_wrong_database_gets_a_hint(tmp_path):
    if not (DATA / "fvc2002" / "DB2_B").is_dir():
        pytest.skip(f"real fingerprint data not found at {DATA}")
    ds = open_dataset("fvc2002-db1-b", root=DATA / "fvc2002" / "DB2_B")
    assert len(ds.problems) == 80 and all(p.kind == "wrong_size" for p in ds.problems)
    assert "fvc2002-db2-b" in ds.problems[0].message


def test_set_a_loader_on_set_b_folder(fvc_copy):
    with pytest.raises(DatasetError) as err:
        open_dataset("fvc2002-db1-a", root=fvc_copy)
    msg = str(err.value)
    assert "fingers 1-100" in msg and "found 80 files for fingers 101-110" in msg
    assert "fvc2002-db1-b" in msg and str(fvc_copy) in msg


def test_parent_folder_instead_of_the_set(tmp_path):
    write_image(tmp_path / "DB1_B" / "101_1.tif", 388, 374)
    with pytest.raises(DatasetError, match=r"only sub-folders \(DB1_B\)"):
        open_dataset("fvc2002-db1-b", root=tmp_path)


def test_folder_of_unrelated_files(tmp_path):
    (tmp_path / "holiday.jpg").write_bytes(b"not really")
    with pytest.raises(DatasetError, match="holiday.jpg"):
        open_dataset("fvc2000-db1-b", root=tmp_path)


# ------------------------------------------------------------------ generic folder


def test_folder_with_custom_pattern(tmp_path):
    for subject in ("alice", "bob"):
        for k in (1, 2, 3):
            write_image(tmp_path / f"{subject}-R{k}.png", 64, 80, seed=k)
    write_image(tmp_path / "bob-Rx.png", 64, 80)
    write_image(tmp_path / "carol-R1.png", 50, 50)
    ds = open_dataset(
        "folder", root=tmp_path, dpi=1000, image_size=(64, 80),
        pattern=r"^(?P<subject>[a-z]+)-R(?P<impression>\d+)\.png$",
    )
    assert ds.info.dpi == 1000 and all(s.dpi == 1000 for s in ds.samples)
    assert len(ds.samples) == 7 and len(ds.subjects) == 3
    assert ds.sample("alice_2").impression == 2
    found = kinds(ds)
    assert [p.path.endswith("bob-Rx.png") for p in found["extra"]] == [True]
    assert [p.path.endswith("carol-R1.png") for p in found["wrong_size"]] == [True]
    assert ds.describe()["params"]["dpi"] == 1000


def test_folder_default_pattern_and_recursion(tmp_path):
    write_image(tmp_path / "a" / "7_1.bmp", 30, 30)
    write_image(tmp_path / "b" / "7_2.png", 30, 30)
    write_image(tmp_path / "7_3.jpg", 30, 30)
    flat = open_dataset("folder", root=tmp_path, dpi="500", recursive="false", image_size="30x30")
    assert [s.id for s in flat.samples] == ["7_3"] and flat.problems == []
    assert flat.info.image_size == (30, 30)
    with pytest.raises(DatasetError, match="image_size"):
        open_dataset("folder", root=tmp_path, dpi=500, image_size="big")
    deep = open_dataset("folder", root=tmp_path, dpi=500, recursive=True)
    assert [s.id for s in deep.samples] == ["7_1", "7_2", "7_3"]
    by_path = open_dataset(
        "folder", root=tmp_path, dpi=500, recursive=True,
        pattern=r"^(?P<subject>[ab])/\d+_(?P<impression>\d+)\.(png|bmp)$",
    )
    assert sorted(s.id for s in by_path.samples) == ["a_1", "b_2"]


@pytest.mark.parametrize("dpi,message", [(None, "needs its resolution"), (20, "outside 50-5000"),
                                          (9000, "outside 50-5000"), ("high", "must be a number"),
                                          (True, "must be a number")])
def test_folder_dpi_is_checked(tmp_path, dpi, message):
    write_image(tmp_path / "1_1.png", 10, 10)
    params = {} if dpi is None else {"dpi": dpi}
    with pytest.raises(DatasetError, match=message):
        open_dataset("folder", root=tmp_path, **params)


def test_folder_pattern_needs_groups(tmp_path):
    write_image(tmp_path / "1_1.png", 10, 10)
    with pytest.raises(DatasetError, match="named groups"):
        open_dataset("folder", root=tmp_path, dpi=500, pattern=r"^(?P<subject>\d+)_\d+\.png$")
    with pytest.raises(DatasetError, match="invalid pattern"):
        open_dataset("folder", root=tmp_path, dpi=500, pattern=r"^(?P<subject>")


def test_folder_needs_an_explicit_root(tmp_path):
    with pytest.raises(DatasetError, match="no default place"):
        open_dataset("folder", data_root=tmp_path, dpi=500)


# ------------------------------------------------------------------ NIST layouts (synthetic)


def test_nist_sd4_layout(tmp_path):
    base = tmp_path / "NISTSpecialDatabase4GrayScaleImagesofFIGS" / "sd04" / "png_txt"
    for number, pos, folder in ((1, 1, "figs_0"), (2, 5, "figs_0"), (251, 10, "figs_1")):
        for take in "fs":
            write_image(base / folder / f"{take}{number:04d}_{pos:02d}.png", 512, 512, seed=number)
            (base / folder / f"{take}{number:04d}_{pos:02d}.txt").write_text(
                f"Gender: M\nClass: W\nHistory: {take}{number:04d}_{pos:02d}.pct W a0591.pct\n"
            )
    (base / "figs_1" / "s0251_10.png").unlink()
    write_image(base / "figs_0" / "s0002_05.png", 500, 480)
    png = base / "figs_0" / "f0001_01.png"
    png.write_bytes(png.read_bytes()[:-20])
    write_image(base / "figs_0" / "thumbnail.png", 32, 32)
    (tmp_path / "sd04_md5.lst").write_text("checksums")

    ds = open_dataset("nist-sd4", data_root=tmp_path)
    assert ds.root == base.absolute()
    assert len(ds.samples) == 6 and len(ds.subjects) == 3
    s = ds.sample("s0001_01")
    assert (s.subject, s.impression, s.dpi) == ("0001", 2, 500)
    assert s.attributes["class"] == "W" and s.attributes["gender"] == "M"
    assert s.attributes["finger_position"] == 1
    assert ds.sample("f0002_05").impression == 1
    found = kinds(ds)
    assert [("s0251_10.png" in p.message) for p in found["missing"]] == [True]
    assert ds.sample("s0251_10").path is None
    assert [("s0002_05.png" in p.message) for p in found["wrong_size"]] == [True]
    assert [("f0001_01.png" in p.message) for p in found["unreadable"]] == [True]
    assert [("thumbnail.png" in p.message) for p in found["extra"]] == [True]
    assert set(found) == {"missing", "wrong_size", "unreadable", "extra"}


def test_nist_sd302_layout(tmp_path):
    root = tmp_path / "sd302"
    b = root / "sd302b" / "images" / "baseline"
    write_image(b / "U" / "500" / "roll" / "00002302_U_500_roll_01.png", 80, 90)
    write_image(b / "U" / "1000" / "roll" / "00002302_U_1000_roll_01.png", 160, 180)
    write_image(b / "R" / "500" / "slap" / "00002302_R_500_slap_13.png", 300, 200)  # four fingers: skipped
    write_image(b / "R" / "500" / "plain" / "00002302_R_500_plain_11.png", 70, 70)  # plain right thumb
    write_image(root / "sd302a" / "images" / "A" / "00002500_A_roll_07.png", 60, 60)
    write_image(root / "sd302a" / "images" / "A" / "latent_0001.png", 60, 60)
    bad = write_image(root / "sd302a" / "images" / "A" / "00002500_A_roll_02.png", 60, 60)
    bad.write_bytes(bad.read_bytes()[:30])

    ds = open_dataset("nist-sd302", data_root=tmp_path)
    by_id = {s.id: s for s in ds.samples}
    assert set(by_id) == {"00002302_U_500_roll_01", "00002302_U_1000_roll_01", "00002302_R_500_plain_11",
                          "00002500_A_roll_07", "00002500_A_roll_02"}
    hi = by_id["00002302_U_1000_roll_01"]
    assert hi.dpi == 1000 and hi.subject == "00002302_01" and hi.attributes["device"] == "U"
    assert by_id["00002500_A_roll_07"].dpi == 500 and by_id["00002500_A_roll_07"].attributes["resolution"] is None
    thumb = by_id["00002302_R_500_plain_11"]
    assert thumb.subject == "00002302_01" and thumb.attributes["frgp"] == 11
    assert sorted(s.impression for s in ds.samples if s.subject == "00002302_01") == [1, 2, 3]
    found = kinds(ds)
    assert [("latent_0001.png" in p.message) for p in found["extra"]] == [True]
    assert [("00002500_A_roll_02.png" in p.message) for p in found["unreadable"]] == [True]

    rolled = open_dataset("nist-sd302", root=root, captures=["roll"], devices=["U"])
    assert sorted(s.id for s in rolled.samples) == ["00002302_U_1000_roll_01", "00002302_U_500_roll_01"]
    # parameters as a command line gives them (strings)
    same = open_dataset("nist-sd302", root=root, captures="roll", devices="U", fingers="1,6")
    assert sorted(s.id for s in same.samples) == sorted(s.id for s in rolled.samples)
    with pytest.raises(DatasetError, match="fingers"):
        open_dataset("nist-sd302", root=root, fingers="thumbs")


def test_probe_image_reads_sizes(tmp_path):
    for ext in ("png", "tif", "bmp", "jpg"):
        assert probe_image(write_image(tmp_path / f"x.{ext}", 37, 23)) == (37, 23)
