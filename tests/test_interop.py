"""Tests of the interoperability matrix (bench.interop and ``fingerbench interop``).

A small dataset (3 fingers x 3 impressions of the embedded synthetic set, and of FVC2002
DB1_B where the real data is present) keeps every cell cheap; the extractors are MINDTCT,
the toy extractor of the harness tests and an external FVC program whose templates are
opaque.
"""

from __future__ import annotations

import json
import re
import stat
import sys
from pathlib import Path

import pytest

from bench import datasets, protocols
from bench.interop import family, run_interop
from bench.plugins.loading import PluginSpec
from conftest import dummy

PROGRAM = '''\
#!{python}
import sys, zlib
verb, image, template, config, output = sys.argv[1:6]
data = open(image, "rb").read()[-2048:]
if verb == "ENROLL":
    open(template, "wb").write(zlib.compress(data))
    line = f"{{image}} {{template}} OK"
else:
    ref = zlib.decompress(open(template, "rb").read())
    line = f"{{image}} {{template}} OK {{sum(a == b for a, b in zip(ref, data)) / len(ref):.4f}}"
open(output, "a").write(line + "\\n")
'''


@pytest.fixture(scope="module")
def small(image_set, tmp_path_factory):
    src = image_set
    root = tmp_path_factory.mktemp("db")
    for f in (101, 102, 103):
        for i in (1, 2, 3):
            (root / f"{f}_{i}.tif").write_bytes((src / f"{f}_{i}.tif").read_bytes())
    program = root.parent / "fvcprog"
    program.write_text(PROGRAM.format(python=sys.executable))
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    ds = datasets.open_dataset("folder", root=root, dpi=500)
    return ds, protocols.build("all-pairs", ds), program


def test_family():
    assert family(PluginSpec("extractor", "mindtct", "extractors.nbis:MindtctExtractor")) == "nbis"
    assert family(PluginSpec("matcher", "x", "extractors.afis.plugins:AfisMatcher")) == "afis"
    assert family(PluginSpec("matcher", "toy", dummy("ToyMatcher"))) == "dummy_plugins"


def test_interop_matrix(small, tmp_path):
    pytest.importorskip("nbis", reason="nbis-py is not installed")
    ds, pairs, program = small
    fvc = {"name": "toyprog", "program": str(program)}
    extractors = [
        PluginSpec("extractor", "mindtct", "extractors.nbis:MindtctExtractor"),
        PluginSpec("extractor", "toy", dummy("ToyExtractor")),
        PluginSpec("extractor", "toyprog", "extractors.external:FvcExecutableExtractor", fvc),
    ]
    matchers = [
        PluginSpec("matcher", "bozorth3", "extractors.nbis:Bozorth3Matcher"),
        PluginSpec("matcher", "toymatch", dummy("ToyMatcher")),
        PluginSpec("matcher", "toyprog", "extractors.external:FvcExecutableMatcher", fvc),
        PluginSpec("matcher", "broken", "extractors.no_such_family:Matcher"),
    ]
    result = run_interop(ds, pairs, extractors, matchers, tmp_path / "runs", tmp_path / "cache", jobs=1,
                         progress=False)
    cell = result.cell
    # native pairs (one family) on the diagonal, run; cross pairs with minutiae matchers, run
    for e, m, native in (("mindtct", "bozorth3", True), ("toy", "toymatch", True), ("toyprog", "toyprog", True),
                         ("mindtct", "toymatch", False), ("toy", "bozorth3", False)):
        c = cell(e, m)
        assert c.native is native and c.error is None and c.skipped is None, (e, m, c)
        assert Path(c.run_dir).is_dir() and c.n_genuine == 9 and c.n_impostor == 27
        assert c.eer is not None
    assert cell("mindtct", "bozorth3").eer < 0.2
    # FMR 1 % needs 100 impostor comparisons; 27 cannot resolve it
    assert cell("mindtct", "bozorth3").fnmr is None and "impostor" in cell("mindtct", "bozorth3").fnmr_reason
    # opaque templates get no cross cells; a matcher of another format is not crossed
    assert "carry no standard minutiae" in cell("toyprog", "bozorth3").skipped
    assert "accepts only fvc-exe:toyprog" in cell("mindtct", "toyprog").skipped
    # a matcher whose module cannot be imported fails its cells, the rest goes on
    assert "cannot import extractors.no_such_family" in cell("mindtct", "broken").error
    summary = {e.name: e for e in result.extractors}
    assert summary["mindtct"].minutiae_mean > 10 and summary["mindtct"].template_bytes_mean > 100
    assert summary["toy"].minutiae_mean == 20 and summary["toyprog"].minutiae_mean == 0
    # the matrix lies beside the protocol's folder, which holds run directories only
    base = tmp_path / "runs" / ds.name / "all-pairs"
    assert result.markdown_path == tmp_path / "runs" / ds.name / "interop-all-pairs.md"
    assert result.json_path == tmp_path / "runs" / ds.name / "interop-all-pairs.json"
    assert result.cells_dir == base
    assert all((p / "manifest.json").is_file() for p in base.iterdir())
    saved = json.loads(result.json_path.read_text())
    assert len(saved["cells"]) == 12 and saved["fmr"] == 0.01
    table = result.markdown_path.read_text()
    assert "| mindtct |" in table and "**" in table
    # every '-' of the table has its reason below it, cells of one reason on one line
    dashes = sum(line.count("| - ") for line in table.splitlines() if line.startswith("| "))
    notes = table.split("Cells marked '-':", 1)[1]
    assert dashes == len(re.findall(r"\w \+ \w", notes)) == 12 - 5
    assert "- toyprog + bozorth3, toyprog + toymatch: the templates of toyprog carry no standard minutiae" in notes
    assert "mindtct + toyprog, toy + toyprog: toyprog accepts only fvc-exe:toyprog" in notes
    assert "mindtct + broken, toy + broken, toyprog + broken: failed: " in notes
    # a second call resumes every run instead of recomputing it
    again = run_interop(ds, pairs, extractors[:1], matchers[:1], tmp_path / "runs", tmp_path / "cache", jobs=1,
                        progress=False)
    assert again.cell("mindtct", "bozorth3").eer == cell("mindtct", "bozorth3").eer


def test_interop_command(small, tmp_path, capsys):
    pytest.importorskip("nbis", reason="nbis-py is not installed")
    from bench.cli import main

    ds, _, _ = small
    code = main(["interop", "-d", "folder", "--dataset-path", str(ds.root), "--dataset-param", "dpi=500",
                 "-p", "fvc", "-e", "mindtct", "-e", dummy("ToyExtractor"), "-m", "bozorth3",
                 "-o", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache"), "-j", "1", "--fmr", "0.1"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "# Interoperability: folder, protocol fvc" in out and "FMR = 10 %" in out
    runs = tmp_path / "runs" / "folder"
    assert (runs / "fvc" / "mindtct+bozorth3" / "scores.csv").is_file()
    # it says where its outputs went
    assert f"Matrix written to {runs / 'interop-fvc.md'} and {runs / 'interop-fvc.json'}" in out
    assert f"run directory is {runs / 'fvc'}/EXTRACTOR+MATCHER" in out
    assert (runs / "interop-fvc.md").read_text() in out
    # the documented report of every run of the dataset reads every cell
    cells = sorted(str(p) for p in runs.glob("*/*"))
    assert len(cells) == 2
    assert main(["report", *cells, "-o", str(tmp_path / "report"), "--bootstrap", "0", "--worst", "0"]) == 0
    assert main(["interop", "-d", "folder", "--dataset-path", str(ds.root), "--dataset-param", "dpi=500",
                 "-e", "mindtct", "-m", "bozorth3", "--fmr", "2"]) == 2


def test_interop_unavailable_plugin_fails_its_cells_with_the_reason(small, tmp_path, capsys, caplog):
    """A plugin named with -e whose package is missing is not tried: its cells fail with the
    reason (once in the log at ERROR, once below the table), and the status is 1; the
    other cells run."""
    from bench.cli import main

    ds, _, _ = small
    code = main(["interop", "-d", "folder", "--dataset-path", str(ds.root), "--dataset-param", "dpi=500",
                 "-p", "fvc", "-e", dummy("UnavailableExtractor"), "-e", dummy("ToyExtractor"),
                 "-m", dummy("ToyMatcher"), "-o", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache"),
                 "-j", "1", "--fmr", "0.1"])
    out = capsys.readouterr().out
    assert code == 1, out
    reason = "is unavailable: the toy package is not installed; install: pip install toy-package"
    assert f"- UnavailableExtractor + ToyMatcher: failed: PluginError: extractor 'UnavailableExtractor' {reason}" in out
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and reason in errors[0]
    assert (tmp_path / "runs" / "folder" / "fvc" / "ToyExtractor+ToyMatcher" / "metrics.json").is_file()
    assert not (tmp_path / "runs" / "folder" / "fvc" / "UnavailableExtractor+ToyMatcher").exists()


def test_matrix_of_an_earlier_version_inside_the_protocol_folder_is_moved_out(small, tmp_path):
    ds, pairs, _ = small
    base = tmp_path / "runs" / ds.name / pairs.protocol
    base.mkdir(parents=True)
    for name in ("interop.json", "interop.md"):
        (base / name).write_text("{}")
    toy = [PluginSpec("extractor", "toy", dummy("ToyExtractor"))], [PluginSpec("matcher", "toymatch", dummy("ToyMatcher"))]
    result = run_interop(ds, pairs, *toy, tmp_path / "runs", tmp_path / "cache", jobs=1, progress=False)
    assert sorted(p.name for p in base.iterdir()) == ["toy+toymatch"]
    assert result.markdown_path.is_file() and result.json_path.is_file()


def test_extraction_table_is_read_with_explicit_types(tmp_path):
    """A large extractions.csv whose columns look numeric in one part and textual in another
    (SOCOFing names, failures) is read without pandas guessing types (no DtypeWarning)."""
    import warnings

    from bench.metrics.summary import read_records
    from bench.store import EXTRACTION_FIELDS

    n = 200_000
    rows = [",".join(EXTRACTION_FIELDS)]
    rows += [f"{i},{i},1,{i}.tif,ok,,30,200,0.01" for i in range(n // 2)]
    rows += [f"s{i},p{i},x,{i}.bmp,fte,no minutiae,,,0.02" for i in range(n // 2, n)]
    (tmp_path / "extractions.csv").write_text("\n".join(rows) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = read_records(tmp_path / "extractions.csv", EXTRACTION_FIELDS)
    assert table["sample"].iloc[0] == "0" and table["sample"].iloc[-1] == f"s{n - 1}"
    assert (table["status"] == "ok").sum() == n // 2
