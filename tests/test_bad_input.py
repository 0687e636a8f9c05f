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
