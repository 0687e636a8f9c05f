"""``fingerbench import``: external scores as a run directory.

The round trip exports the scores of a real FingerBench run (the kit's templates through the
built-in MCC matcher), imports them in every format and checks that metrics.json has the
same accuracy; bad files are refused with the file and line named (exit status 2); on the
FVC2002 DB1 B templates of ../shared/datasets an all-pairs score matrix is imported under
both protocols and checked against an independent EER computation written here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.cli import main
from bench.formats import write_template
from bench.testing import kit_samples


@pytest.fixture(autouse=True)
def _fork_workers(monkeypatch):
    monkeypatch.setenv("FINGERBENCH_START_METHOD", "fork")


def _run(args: list[str]) -> int:
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def kit_run(tmp_path_factory) -> tuple[Path, Path]:
    """(run directory of template + mcc on the kit, all pairs; the kit's .xyt folder)."""
    import os

    base = tmp_path_factory.mktemp("kit")
    os.environ.setdefault("FINGERBENCH_START_METHOD", "fork")
    root = base / "xyt"
    root.mkdir()
    for s in kit_samples():
        write_template(s.truth, root / f"{s.id}.xyt", "xyt", convention="nist")
    assert _run(["run", "-d", "templates", "--dataset-path", root, "--dataset-param", "height=320",
                 "-e", "template", "-m", "mcc", "-p", "all-pairs", "-o", base / "runs", "-j", "1", "-q"]) == 0
    return base / "runs" / "templates" / "all-pairs" / "template+mcc", root


def _scores(run: Path) -> pd.DataFrame:
    return pd.read_csv(run / "scores.csv", dtype=str, keep_default_na=False)


def _accuracy(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())["accuracy"]


def _matrix(df: pd.DataFrame, transpose: bool = False) -> pd.DataFrame:
    names = sorted(set(df["probe"]) | set(df["reference"]))
    m = pd.DataFrame("", index=names, columns=names)
    for p, r, s in zip(df["probe"], df["reference"], df["score"]):
        m.loc[(r, p) if transpose else (p, r)] = s
    return m


# -- round trip, every format ----------------------------------------------------------------
def _write(fmt: str, df: pd.DataFrame, path: Path) -> list[str]:
    """Write the scores in a format; return the extra import options it needs."""
    if fmt == "csv":
        df[["probe", "reference", "score", "genuine"]].to_csv(path, index=False)
    elif fmt == "parquet":
        pytest.importorskip("pyarrow")
        out = df[["probe", "reference"]].copy()
        out["score"] = df["score"].astype(float)
        out["genuine"] = df["genuine"].astype(int).astype(bool)
        out.to_parquet(path)
    elif fmt == "renamed":
        df[["probe", "reference", "score"]].rename(columns={"probe": "query", "score": "similarity"}).to_csv(
            path, index=False, sep="\t")
        return ["--column", "probe=query", "--column", "score=similarity"]
    elif fmt == "bob4":  # one model per subject (its first impression), named by the subject
        with open(path, "w") as f:
            f.write("# claimed_id real_id test_label score\n\n")
            for p, r, s in zip(df["probe"], df["reference"], df["score"]):
                if r.endswith("_1"):
                    f.write(f"{r.split('_')[0]} {p.split('_')[0]} {p} {s}\n")
        return ["--format", "bob4"]
    elif fmt == "bob5":
        with open(path, "w") as f:
            for p, r, s in zip(df["probe"], df["reference"], df["score"]):
                f.write(f"{r.split('_')[0]} {r} {p.split('_')[0]} {p} {s}\n")
    elif fmt == "matrix":
        _matrix(df).to_csv(path)
        return ["-p", "all-pairs"]
    elif fmt == "matrix-transposed":
        _matrix(df).T.to_csv(path)
        return ["-p", "all-pairs", "--matrix-rows", "reference"]
    elif fmt == "matrix-upper":  # each pair once, stored the other way round
        _matrix(df, transpose=True).to_csv(path)
        return ["-p", "all-pairs", "--symmetric"]
    return []


@pytest.mark.parametrize("fmt", ["csv", "parquet", "renamed", "bob5", "matrix", "matrix-transposed",
                                 "matrix-upper"])
def test_round_trip_gives_the_same_accuracy(tmp_path, kit_run, fmt):
    run, _ = kit_run
    df = _scores(run)
    path = tmp_path / ("scores.parquet" if fmt == "parquet" else f"scores-{fmt}.txt" if "bob" in fmt
                       else "scores.csv")
    extra = _write(fmt, df, path)
    out = tmp_path / "imported"
    assert _run(["import", path, "-d", "templates", "--name", "mcc-elsewhere", "--higher-is-better",
                 "--run-dir", out, "-q", *extra]) == 0
    assert _accuracy(out) == _accuracy(run)
    imported = _scores(out)
    assert imported["status"].eq("ok").all() and imported["seconds"].eq("").all()
    # the same pairs, in the same order, with bit-identical scores
    assert list(zip(imported["probe"], imported["reference"])) == list(zip(df["probe"], df["reference"]))
    assert np.array_equal(imported["score"].astype(float), df["score"].astype(float))


def test_bob4_reference_is_the_claimed_model(tmp_path, kit_run):
    run, _ = kit_run
    df = _scores(run)
    path = tmp_path / "scores-dev"
    _write("bob4", df, path)
    out = tmp_path / "imported"
    assert _run(["import", path, "-d", "templates", "--name", "b", "--higher-is-better", "--format", "bob4",
                 "--run-dir", out, "-q"]) == 0
    first = df[df["reference"].str.endswith("_1")]
    g = first["probe"].str.split("_").str[0] == first["reference"].str.split("_").str[0]
    acc = _accuracy(out)
    assert (acc["n_genuine"], acc["n_impostor"]) == (int(g.sum()), int((~g).sum()))
    s = first["score"].astype(float).to_numpy()
    assert acc["eer"] == pytest.approx(fvc_eer(s[g.to_numpy()], s[~g.to_numpy()]), abs=1e-12)
    sc = _scores(out)
    assert set(sc["reference"]) == set(sc["reference_subject"])  # the reference is the claimed model


def test_manifest_and_metrics_say_what_was_imported(tmp_path, kit_run, capsys):
    from bench.datasets.base import sha256_file

    run, _ = kit_run
    path = tmp_path / "scores.csv"
    _write("csv", _scores(run), path)
    out = tmp_path / "runs"
    assert _run(["import", path, "-d", "templates", "--name", "sdk-x", "--version", "4.2", "--higher-is-better",
                 "-o", out]) == 0
    assert "speed unknown" in capsys.readouterr().out
    folder = out / "templates" / "listed" / "external+sdk-x"
    m = json.loads((folder / "manifest.json").read_text())
    assert m["source"]["sha256"] == sha256_file(path) and m["source"]["format"] == "pairs"
    assert m["matcher"]["external"] and m["matcher"]["name"] == "sdk-x" and m["matcher"]["version"] == "4.2"
    assert m["matcher"]["higher_is_better"] is True and m["speed"].startswith("unknown")
    speed = json.loads((folder / "metrics.json").read_text())["speed"]
    assert speed["comparisons_per_second_per_core"] is None and speed["extraction_ms"]["median"] is None
    assert speed["note"].startswith("unknown")
    # a second import into the same folder is refused unless --force
    assert _run(["import", path, "-d", "templates", "--name", "sdk-x", "--higher-is-better", "-o", out]) == 2
    assert _run(["import", path, "-d", "templates", "--name", "sdk-x", "--higher-is-better", "-o", out,
                 "--force"]) == 0


def test_lower_is_better_distances(tmp_path, kit_run):
    run, _ = kit_run
    df = _scores(run)
    df["score"] = (1 - df["score"].astype(float)).map(repr)
    path = tmp_path / "d.csv"
    _write("csv", df, path)
    out = tmp_path / "imported"
    assert _run(["import", path, "-d", "templates", "--name", "d", "--lower-is-better", "--run-dir", out,
                 "-q"]) == 0
    assert _accuracy(out)["eer"] == _accuracy(run)["eer"]
    assert _accuracy(out)["n_genuine"] == _accuracy(run)["n_genuine"]


def test_downstream_metrics_report_compare_and_gates(tmp_path, kit_run, capsys):
    run, root = kit_run
    path = tmp_path / "scores.csv"
    _write("csv", _scores(run), path)
    out = tmp_path / "imported"
    # with the images given, the dataset digest is the run's: report and compare see the same data
    assert _run(["import", path, "-d", "templates", "--dataset-path", root, "--name", "x", "--higher-is-better",
                 "-p", "all-pairs", "--run-dir", out, "-q"]) == 0
    assert (json.loads((out / "manifest.json").read_text())["dataset"]["sha256"]
            == json.loads((run / "manifest.json").read_text())["dataset"]["sha256"])
    assert _run(["metrics", out]) == 0
    assert _run(["report", run, out, "-o", tmp_path / "report", "-q"]) == 0
    speed = pd.read_csv(tmp_path / "report" / "speed.csv")
    row = speed[speed["matcher"] == "x"].iloc[0]
    assert np.isnan(row["comparisons_per_s_per_core"]) and row["comparison_n"] == 0  # unknown, not zero
    capsys.readouterr()
    assert _run(["compare", run, out, "--fail-if", "eer:+0.5pp", "--fail-if", "comparisons_per_s:-10%",
                 "--fail-if", "scores:changed", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["passed"] and not result["comparisons"][0]["warnings"]
    gates = {g["gate"]: g for g in result["gates"]}
    assert gates["comparisons_per_s:-10%"]["skipped"] and "unknown" in gates["comparisons_per_s:-10%"]["message"]
    assert gates["scores:changed"]["passed"]


# -- subjects ---------------------------------------------------------------------------------
def test_subjects_from_genuine_pairs_or_a_table(tmp_path):
    rows = "probe,reference,score,genuine\na,b,0.9,1\nc,a,0.8,1\nd,a,0.1,0\ne,d,0.7,1\ne,b,0.2,0\n"
    path = tmp_path / "s.csv"
    path.write_text(rows)
    out = tmp_path / "r1"
    assert _run(["import", path, "-d", "mine", "--name", "x", "--higher-is-better", "--run-dir", out, "-q"]) == 0
    sc = _scores(out)
    assert sc["genuine"].tolist() == ["1", "1", "0", "1", "0"]
    subj = dict(zip(sc["probe"], sc["probe_subject"])) | dict(zip(sc["reference"], sc["reference_subject"]))
    assert subj["a"] == subj["b"] == subj["c"] and subj["d"] == subj["e"] and subj["a"] != subj["d"]
    table = tmp_path / "subjects.csv"
    table.write_text("sample,subject\na,1\nb,1\nc,1\nd,2\ne,2\n")
    path.write_text(rows.replace(",1\n", ",\n").replace(",0\n", ",\n"))
    assert _run(["import", path, "-d", "mine", "--name", "x", "--higher-is-better", "--subjects", table,
                 "--run-dir", tmp_path / "r2", "-q"]) == 0
    assert _scores(tmp_path / "r2")["genuine"].tolist() == ["1", "1", "0", "1", "0"]


def test_naming_regex(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("probe,reference,score\nS01-b,S01-a,5\nS02-a,S01-a,1\nS02-b,S02-a,4\n")
    out = tmp_path / "r"
    assert _run(["import", path, "-d", "mine", "--name", "x", "--higher-is-better", "--naming",
                 r"^(?P<subject>S\d+)-", "--run-dir", out, "-q"]) == 0
    assert _scores(out)["genuine"].tolist() == ["1", "0", "1"]
    assert _accuracy(out)["eer"] == 0.0


def test_cells_and_a_pair_list_as_protocols(tmp_path, kit_run):
    run, _ = kit_run
    df = _scores(run)
    path = tmp_path / "m.csv"
    _matrix(df).to_csv(path)
    assert _run(["import", path, "-d", "templates", "--name", "x", "--higher-is-better", "-p", "cells",
                 "--run-dir", tmp_path / "cells", "-q"]) == 0
    assert _accuracy(tmp_path / "cells") == _accuracy(run)
    pairs = tmp_path / "few.csv"
    df.iloc[::3][["probe", "reference"]].to_csv(pairs, index=False)
    assert _run(["import", path, "-d", "templates", "--name", "x", "--higher-is-better", "-p", pairs,
                 "--run-dir", tmp_path / "few", "-q"]) == 0
    assert len(_scores(tmp_path / "few")) == len(df.iloc[::3])
    m = json.loads((tmp_path / "few" / "manifest.json").read_text())
    assert m["source"]["comparisons_in_file"] == len(df) and m["source"]["comparisons_used"] == len(df.iloc[::3])


# -- bad files: a named error and exit status 2, never a smaller benchmark ------------------------
BAD = [
    ("pairs", "probe,reference,similarity\n101_2,101_1,0.5\n", [], "no column 'score'"),
    ("pairs", "probe,reference,score\n101_2,101_1,0.5\n101_3,101_1,abc\n", [], "line 3: score 'abc' is not a finite"),
    ("pairs", "probe,reference,score\n101_2,101_1,0.5\n101_3,101_1,inf\n", [], "line 3: score 'inf'"),
    ("pairs", "probe,reference,score\n101_2,101_1,0.5\n101_2,101_1,0.6\n", [], "line 3: the pair 101_2 vs 101_1 again "
                                                                            "(first on line 2)"),
    ("pairs", "probe,reference,score\n101_2,101_1\n", [], "line 2: 2 fields where the header has 3"),
    ("pairs", "probe,reference,score\n101_2,,0.5\n", [], "line 2: the reference is empty"),
    ("pairs", "probe,reference,score,genuine\n101_2,101_1,0.5,0\n", [], "line 2: 101_2 vs 101_1 is marked impostor"),
    ("pairs", "probe,reference,score\nx1,101_1,0.5\n", [], "the sample name 'x1' does not match the naming"),
    ("pairs", "probe,reference,score\n101_2,101_1,0.5\n", ["--format", "bob4"], "line 1: 1 fields, expected 4"),
    ("bob", "101 101 101_2 0.5\n101 101 101_3 0.5 7\n", ["--format", "bob4"], "line 2: 5 fields, expected 4"),
    ("bob", "101 101_1 101 101_2 high\n", [], "line 1: score 'high' is not a finite number"),
    ("matrix", ",101_1,101_2\n101_1,,0.5\n101_2,,\n", ["-p", "fvc"],
     "lacks 1 of the 1 pairs of protocol fvc (first: 101_2 vs 101_1)"),
    ("matrix", ",101_1,101_2\n101_1,,0.5\n", [], "protocol fvc needs a square matrix"),
    ("matrix", ",101_1,101_2\n101_1,,0.5\n101_2,x,\n", [], "line 3: column 2 (101_1): score 'x' is not"),
    ("matrix", ",101_1,101_1\n101_2,0.5,0.4\n", [], "the column '101_1' appears twice"),
    ("matrix", ",101_1,101_2\n101_2,0.5\n", [], "line 2: 2 cells where the first row has 3"),
    ("matrix", ",101_1,101_2\n101_2,0.5,\n", ["-p", "listed"], "a matrix has no list of pairs"),
    ("pairs", "probe,reference,score\n101_2,101_1,0.5\n", ["-p", "cells"], "-p cells applies to a matrix"),
]


@pytest.mark.parametrize("kind, content, extra, words", BAD, ids=[b[3][:40] for b in BAD])
def test_bad_files_are_refused_with_the_file_and_line(tmp_path, caplog, kind, content, extra, words):
    path = tmp_path / ("scores.csv" if kind != "bob" else "scores.txt")
    path.write_text(content)
    out = tmp_path / "r"
    assert _run(["import", path, "-d", "mine", "--name", "x", "--higher-is-better", "--run-dir", out,
                 *extra]) == 2
    assert str(path) in caplog.text and words in caplog.text, caplog.text
    assert not (out / "manifest.json").exists()


def test_a_bad_naming_is_a_usage_error(tmp_path, caplog):
    path = tmp_path / "s.csv"
    path.write_text("probe,reference,score\n101_2,101_1,0.5\n")
    assert _run(["import", path, "-d", "mine", "--name", "x", "--higher-is-better", "--naming", "(?P<subject",
                 "--run-dir", tmp_path / "r"]) == 2
    assert "--naming '(?P<subject': not a regular expression" in caplog.text


def test_a_pair_the_matrix_lacks_is_named(tmp_path, kit_run, caplog):
    run, _ = kit_run
    m = _matrix(_scores(run))
    m.loc["2_2", "2_1"] = ""
    path = tmp_path / "m.csv"
    m.to_csv(path)
    assert _run(["import", path, "-d", "templates", "--name", "x", "--higher-is-better", "-p", "fvc",
                 "--run-dir", tmp_path / "r"]) == 2
    assert "lacks 1 of the" in caplog.text and "(first: 2_2 vs 2_1)" in caplog.text


def test_a_sample_the_file_never_names_is_not_a_smaller_benchmark(tmp_path, caplog):
    """FVC2002 DB1 B has 10 fingers x 8 impressions: a matrix without 105_8 must not give a
    protocol of 79 images."""
    names = [f"{f}_{i}" for f in range(101, 111) for i in range(1, 9) if (f, i) != (105, 8)]
    m = pd.DataFrame(0.5, index=names, columns=names)
    path = tmp_path / "m.csv"
    m.to_csv(path)
    assert _run(["import", path, "-d", "fvc2002-db1-b", "--name", "x", "--higher-is-better", "-p", "fvc",
                 "--run-dir", tmp_path / "r"]) == 2
    assert "names 79 samples of 10 fingers" in caplog.text and "105 (7)" in caplog.text


def test_parquet_errors_name_the_row(tmp_path, caplog):
    pytest.importorskip("pyarrow")
    path = tmp_path / "s.parquet"
    pd.DataFrame({"probe": ["101_2", "101_3"], "reference": ["101_1", "101_1"], "score": ["0.5", "n/a"]}).to_parquet(path)
    assert _run(["import", path, "-d", "mine", "--name", "x", "--higher-is-better", "--run-dir", tmp_path / "r"]) == 2
    assert f"{path}, row 2: score 'n/a' is not a finite number" in caplog.text


def test_names_that_match_no_image_are_refused(tmp_path, kit_run, caplog):
    run, root = kit_run
    df = _scores(run)
    df.loc[0, "probe"] = "9_9"
    path = tmp_path / "s.csv"
    _write("csv", df, path)
    assert _run(["import", path, "-d", "templates", "--dataset-path", root, "--name", "x", "--higher-is-better",
                 "--run-dir", tmp_path / "r"]) == 2
    assert "match no image" in caplog.text and "9_9" in caplog.text


def test_score_direction_must_be_declared(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("probe,reference,score\n101_2,101_1,0.5\n")
    with pytest.raises(SystemExit) as exc:
        _run(["import", path, "-d", "mine", "--name", "x"])
    assert exc.value.code == 2


def test_hand_made_run_missing_a_manifest_entry_is_named_not_a_key_error(tmp_path, kit_run, caplog):
    import shutil

    run, _ = kit_run
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    m = json.loads((copy / "manifest.json").read_text())
    del m["matcher"]
    (copy / "manifest.json").write_text(json.dumps(m))
    assert _run(["metrics", copy]) == 2
    assert "'matcher.name' is missing" in caplog.text


# -- real data: an all-pairs score matrix of an FVC2002 B set ----------------------------------------
def fvc_eer(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """The FVC EER (Maio et al. 2002), by brute force over every threshold: FMR(t) = share of
    impostor scores >= t, FNMR(t) = share of genuine scores < t."""
    ts = np.unique(np.concatenate([genuine, impostor, [np.inf]]))
    fmr = np.array([(impostor >= t).mean() for t in ts])
    fnmr = np.array([(genuine < t).mean() for t in ts])
    t1 = np.flatnonzero(fnmr <= fmr).max()
    t2 = np.flatnonzero(fnmr >= fmr).min()
    if fnmr[t1] + fmr[t1] <= fmr[t2] + fnmr[t2]:
        low, high = fnmr[t1], fmr[t1]
    else:
        low, high = fmr[t2], fnmr[t2]
    return float((low + high) / 2)


def test_fvc2002_db1b_score_matrix_under_both_protocols(tmp_path, shared_data):
    root = shared_data / "templates" / "iso19794-2-fvc2002" / "DB1_B"
    if not root.is_dir():
        pytest.skip(f"the FVC2002 DB1 B templates are not at {root}")
    runs = tmp_path / "runs"
    assert _run(["run", "-d", "templates", "--dataset-path", root, "-e", "template", "-m", "mcc", "-p", "all-pairs",
                 "-o", runs, "-j", "1", "-q"]) == 0
    assert _run(["run", "-d", "templates", "--dataset-path", root, "-e", "template", "-m", "mcc", "-p", "fvc",
                 "-o", runs, "-j", "1", "-q"]) == 0
    native = {p: runs / "templates" / p / "template+mcc" for p in ("fvc", "all-pairs")}
    df = _scores(native["all-pairs"])
    assert len(df) == 3160
    path = tmp_path / "matrix.csv"
    _matrix(df, transpose=True).to_csv(path)  # each comparison once, above the diagonal
    for protocol, (n_gen, n_imp) in (("fvc", (280, 45)), ("all-pairs", (280, 2880))):
        out = tmp_path / f"imported-{protocol}"
        assert _run(["import", path, "-d", "fvc2002-db1-b", "--name", "mcc-matrix", "--higher-is-better",
                     "-p", protocol, "--symmetric", "--run-dir", out, "-q"]) == 0
        acc = _accuracy(out)
        assert (acc["n_genuine"], acc["n_impostor"]) == (n_gen, n_imp)
        sc = _scores(out)
        s, g = sc["score"].astype(float).to_numpy(), sc["genuine"].eq("1").to_numpy()
        assert acc["eer"] == pytest.approx(fvc_eer(s[g], s[~g]), abs=1e-12)
        assert 0 < acc["eer"] < 0.2
        mine, theirs = _accuracy(native[protocol]), acc
        for key in ("eer", "eer_low", "eer_high", "n_genuine", "n_impostor", "operating_points"):
            assert mine[key] == theirs[key], key
    images = shared_data / "fvc2002" / "DB1_B"
    if images.is_dir():  # the sample names checked against the images, whose digests are recorded
        out = tmp_path / "imported-with-images"
        assert _run(["import", path, "-d", "fvc2002-db1-b", "--dataset-path", images, "--name", "mcc-matrix",
                     "--higher-is-better", "-p", "fvc", "--symmetric", "--run-dir", out, "-q"]) == 0
        ds = json.loads((out / "manifest.json").read_text())["dataset"]
        assert len(ds["files_sha256"]) == 80 and ds["subjects_from"] == "dataset images"
        assert _accuracy(out) == _accuracy(tmp_path / "imported-fvc")
