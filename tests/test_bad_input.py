"""Bad input refused by name, without costing the rest of a run: template datasets, pair
lists, dataset folders, images, reports. Synthetic data only."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.cli import main
from bench.formats import write_template
from bench.testing import kit_samples


@pytest.fixture(autouse=True)
def _fork_workers(monkeypatch):
    monkeypatch.setenv("FINGERBENCH_START_METHOD", "fork")


# -- 6. dataset parameters reach the 'template' extractor -------------------------------------
def test_xyt_height_given_to_the_dataset_is_used(tmp_path, capsys, caplog):
    root = tmp_path / "xyt"
    root.mkdir()
    for s in kit_samples():
        write_template(s.truth, root / f"{s.id}.xyt", "xyt", convention="nist")
    args = ["run", "-d", "templates", "--dataset-path", str(root), "-e", "template", "-m", "mcc",
            "-o", str(tmp_path / "runs"), "-j", "1"]
    assert main(args + ["--dataset-param", "height=320"]) == 0
    out = capsys.readouterr().out
    assert "EER 0.00%" in out and "REJ_ENROLL 0" in out
    assert "pass height=" not in caplog.text


# -- 7. pair lists -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def kit_dataset():
    from bench.datasets.base import Dataset, DatasetInfo, Sample

    info = DatasetInfo("kit", "kit", "synthetic", 500, None, None, None, "", "", "", ("fvc",))
    return Dataset(info, Path("."), [Sample(s.id, str(s.finger), s.impression, None, 500.0) for s in kit_samples()])


@pytest.mark.parametrize("content, words", [
    (b"probe,reference\n1_1,\n", ":2: the reference id is empty"),
    (b"probe,reference\n1_1\n", ":2: the reference id is empty"),
    (b"probe,reference\n1_1,2_\xe9\n", ":2: not UTF-8 text (byte 0xe9 at offset 22)"),
    (b"a,b\n1_1,1_2\n", "needs a header with columns probe,reference[,genuine]; found 'a', 'b'"),
    (b"", "found nothing"),
    (b"probe,reference\n1_1,1_2\n1_1,1_2\n", ":3: duplicate pair"),
])
def test_bad_pair_lists_are_refused_with_the_file_and_line(tmp_path, kit_dataset, content, words):
    from bench.protocols import ProtocolError, from_csv

    path = tmp_path / "pairs.csv"
    path.write_bytes(content)
    with pytest.raises(ProtocolError) as err:
        from_csv(path, kit_dataset)
    assert str(path) in str(err.value) and words in str(err.value)


@pytest.mark.parametrize("header", [b"\xef\xbb\xbfprobe,reference", b"probe , reference", b"Probe,Reference,Genuine"])
def test_pair_list_headers_as_spreadsheets_write_them(tmp_path, kit_dataset, header):
    from bench.protocols import from_csv

    path = tmp_path / "pairs.csv"
    genuine = b",1" if header.endswith(b"Genuine") else b""
    path.write_bytes(header + b"\r\n1_1,1_2" + genuine + b"\r\n1_1,2_1" + (b",0" if genuine else b"") + b"\r\n")
    pairs = from_csv(path, kit_dataset)
    assert [(p.probe, p.reference, p.genuine) for p in pairs.pairs] == [("1_1", "1_2", True), ("1_1", "2_1", False)]


# -- 8. report.md escapes what comes from the runs ---------------------------------------------
def test_report_markdown_escapes_names(tmp_path):
    import shutil

    import cv2

    kit = Path(__file__).with_name("kit_plugins.py")
    root = tmp_path / "images"
    root.mkdir()
    for s in kit_samples()[:6]:  # fingers 1 and 2
        cv2.imwrite(str(root / f"{s.finger}<script>_{s.impression}.png"), s.image)
    args = ["run", "-d", "folder", "--dataset-path", str(root), "--dataset-param", "dpi=500", "-j", "1",
            "-e", f"{kit}:OracleExtractor", "-m", f"{kit}:NearestMatcher", "-o", str(tmp_path / "runs"), "--report"]
    assert main(args) == 0
    md = (tmp_path / "runs" / "report" / "report.md").read_text()
    assert "&lt;script&gt;" in md and "<script" not in md
    assert "<script" not in (tmp_path / "runs" / "report" / "report.html").read_text()
    shutil.rmtree(tmp_path / "runs")


# -- 1-3. dataset folders and images -----------------------------------------------------------
def _png(width: int, height: int, rows: bytes = b"") -> bytes:
    """A PNG declaring ``width`` x ``height`` 8-bit grey pixels, with ``rows`` (raw, zlib-
    compressed here) as its only image data."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


@pytest.fixture
def messy_folder(tmp_path) -> Path:
    """Kit images of fingers 1 and 2, with a symlink loop, a dangling link, a copy under
    another id, a folder named like an image, and a PNG that declares 30000 x 30000 pixels."""
    import cv2

    root = tmp_path / "images"
    root.mkdir()
    for s in kit_samples()[:6]:
        cv2.imwrite(str(root / f"{s.id}.png"), s.image)
    (root / "loop_1.png").symlink_to(root / "loop_2.png")
    (root / "loop_2.png").symlink_to(root / "loop_1.png")
    (root / "gone_1.png").symlink_to(root / "nowhere.png")
    (root / "1_4.png").write_bytes((root / "1_2.png").read_bytes())
    (root / "2_4.png").mkdir()
    (root / "3_1.png").write_bytes(_png(30000, 30000, b"\x00" * 30001))
    return root


def test_a_messy_folder_opens_with_each_problem_named(messy_folder):
    from bench.datasets import open_dataset

    ds = open_dataset("folder", root=messy_folder, dpi=500)
    problems = {(p.kind, Path(p.path).name): p.message for p in ds.problems}
    assert "symbolic link in a loop" in problems[("unreadable", "loop_1.png")]
    assert "symbolic link to nothing" in problems[("unreadable", "gone_1.png")]
    assert "a folder named like a data file" in problems[("not_a_file", "2_4.png")]
    assert "the same bytes as 1_2.png (sample 1_2)" in problems[("same_content", "1_4.png")]
    assert "declares 30000x30000 pixels" in problems[("unreadable", "3_1.png")]
    assert ds.sample("1_4").attributes["problem"] == "same_content"


def test_a_decompression_bomb_is_refused_from_its_header(tmp_path):
    from bench.datasets.base import ImageError, read_grayscale

    path = tmp_path / "bomb.png"
    path.write_bytes(_png(30000, 30000, b"\x00" * 30001))
    with pytest.raises(ImageError, match="declares 30000x30000 pixels .* refused without decoding"):
        read_grayscale(path)
    fine = tmp_path / "fine.png"
    fine.write_bytes(_png(3, 2, b"\x00\x01\x02\x03\x00\x04\x05\x06"))
    assert read_grayscale(fine).tolist() == [[1, 2, 3], [4, 5, 6]]


def test_a_run_on_a_messy_folder_goes_on(messy_folder, tmp_path, capsys, caplog):
    kit = Path(__file__).with_name("kit_plugins.py")
    args = ["run", "-d", "folder", "--dataset-path", str(messy_folder), "--dataset-param", "dpi=500",
            "--dataset-param", "validate=none", "-j", "1", "-p", "all-pairs",
            "-e", f"{kit}:OracleExtractor", "-m", f"{kit}:NearestMatcher", "-o", str(tmp_path / "runs")]
    assert main(args) == 0
    assert "EER" in capsys.readouterr().out
    assert "3_1.png: the header declares 30000x30000 pixels" in caplog.text  # at extraction, unvalidated
