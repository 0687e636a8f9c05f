"""``fingerbench import``: external scores as a run directory.

The round trip exports the scores of a real FingerBench run (the kit's templates through the
built-in MCC matcher), imports them in every format and checks that metrics.json has the
same accuracy; bad files are refused with the file and line named (exit status 2); on the
FVC2002 DB1 B templates of ../shared/datasets an all-pairs score matrix is imported under
both protocols and checked against an independent EER computation written here. 1:N
candidate lists are checked against a brute-force count of mate ranks and against the
metrics of a native identification run whose lists they are; bad lists are refused with
the file and line named.
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


# ------------------------------------------------------------------- 1:N candidate lists
PROTOCOL = """role,id,subject,mated
gallery,a_1,a,
gallery,a_2,a,
gallery,b_1,b,
gallery,c_1,c,
gallery,d_1,d,
probe,a_3,a,1
probe,b_2,b,1
probe,c_2,c,1
probe,d_2,d,1
probe,x_1,x,0
probe,y_1,y,0
"""


def _identification(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def _brute_force_ranks(rows: list[tuple[str, str, float]], subject_of: dict[str, str], probes: dict[str, str]
                       ) -> tuple[dict[str, int], dict[str, float]]:
    """Mate rank (0: not listed) and top similarity per probe, by direct counting: each subject
    keeps its best similarity; rank = 1 + other subjects at least as good."""
    best: dict[str, dict[str, float]] = {p: {} for p in probes}
    for probe, cand, sim in rows:
        subj = subject_of.get(cand, cand)
        best[probe][subj] = max(best[probe].get(subj, -np.inf), sim)
    ranks, top = {}, {}
    for probe, subj in probes.items():
        listed = best[probe]
        top[probe] = max(listed.values(), default=-np.inf)
        if subj in listed:
            ranks[probe] = 1 + sum(1 for s, v in listed.items() if s != subj and v >= listed[subj])
        else:
            ranks[probe] = 0
    return ranks, top


def test_candidate_lists_of_distances_against_a_brute_force_count(tmp_path, capsys):
    """Distances, a subject listed through two templates, a tie that counts against the mate,
    a mate not listed, a search with no candidate; ranks as given by the file."""
    protocol = tmp_path / "protocol.csv"
    protocol.write_text(PROTOCOL)
    lists = tmp_path / "lists.csv"
    rows = [("a_3", "a_2", 1.0), ("a_3", "b_1", 2.0), ("a_3", "a_1", 3.0),   # a: best of two templates
            ("b_2", "c", 0.5), ("b_2", "b_1", 0.5), ("b_2", "a_1", 0.9),     # tie with c: rank 2
            ("c_2", "a_1", 0.2), ("c_2", "b_1", 0.3),                        # mate not listed
            ("x_1", "d_1", 4.0)]
    text = "probe,candidate,score,rank\n"
    for probe in ("a_3", "b_2", "c_2", "x_1"):
        ordered = sorted((r for r in rows if r[0] == probe), key=lambda r: r[2])
        text += "".join(f"{p},{c},{s},{k}\n" for k, (p, c, s) in enumerate(ordered, 1))
    text += "d_2,,,\ny_1,,,\n"                                                  # searches that returned none
    lists.write_text(text)
    run = tmp_path / "run"
    assert _run(["import", lists, "-d", "mine", "--name", "sdk", "--lower-is-better", "-p", protocol,
                 "-L", "3", "--run-dir", run]) == 0
    assert "penetration and speed unknown" in capsys.readouterr().out
    subject_of = {"a_1": "a", "a_2": "a", "b_1": "b", "c_1": "c", "d_1": "d"}
    probes = {"a_3": "a", "b_2": "b", "c_2": "c", "d_2": "d", "x_1": "x", "y_1": "y"}
    ranks, top = _brute_force_ranks([(p, c, -s) for p, c, s in rows], subject_of, probes)
    assert ranks == {"a_3": 1, "b_2": 2, "c_2": 0, "d_2": 0, "x_1": 0, "y_1": 0}
    searches = pd.read_parquet(run / "searches.parquet").set_index("probe")
    assert searches["mate_rank"].to_dict() == ranks
    assert searches["top_score"].to_dict() == top
    assert list(searches["mated"]) == [True, True, True, True, False, False]
    m = _identification(run)
    mated = [p for p, s in probes.items() if s in set(subject_of.values())]
    assert m["cmc"] == [sum(1 for p in mated if 0 < ranks[p] <= k) / len(mated) for k in (1, 2, 3)]
    assert m["n_searches"] == 6 and m["candidates"] == 3 and "penetration_rate" not in m
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["kind"] == "identification" and manifest["matcher"]["external"] is True
    assert manifest["source"]["candidates_merged_into_their_subject"] == 1
    assert manifest["speed"].startswith("unknown")
    cands = pd.read_parquet(run / "candidates.parquet")
    assert cands[cands["probe"] == "a_3"][["rank", "subject", "score"]].values.tolist() == [[1, "a", -1.0],
                                                                                          [2, "b", -2.0]]


def test_candidate_lists_equal_a_native_identification_run(tmp_path, capsys):
    """The candidate lists of a run made by 'fingerbench identify', exported and imported (as
    CSV and as Parquet, candidates named by template or by subject), give the same metrics;
    'metrics' and 'report' read the imported run, alone and beside the native one."""
    native = tmp_path / "native"
    assert _run(["identify", "--gallery-size", 30, "--probes", 15, "-m", "mcc", "-L", 30, "-j", 1, "-o", native,
                 "-q"]) == 0
    proto = pd.read_csv(native / "protocol.csv", dtype=str, keep_default_na=False)
    template_of = dict(zip(proto.loc[proto["role"] == "gallery", "subject"], proto.loc[proto["role"] == "gallery", "id"]))
    cands = pd.read_parquet(native / "candidates.parquet")
    assert len(cands) == 15 * 30
    cands["candidate"] = [template_of[s] if k % 2 else s for k, s in enumerate(cands["subject"])]
    table = cands[["probe", "candidate", "score", "rank"]]
    expected = json.loads((native / "metrics.json").read_text())
    for name, path in (("csv", tmp_path / "lists.csv"), ("parquet", tmp_path / "lists.parquet")):
        table.to_csv(path, index=False) if name == "csv" else table.to_parquet(path, index=False)
        assert _run(["import", path, "-d", "synthetic", "--name", "mcc-elsewhere", "--higher-is-better",
                     "-p", native / "protocol.csv", "-o", tmp_path / name]) == 0
        run = next((tmp_path / name / "identify").glob("*/external+mcc-elsewhere"))
        got = _identification(run)
        for key in ("n_searches", "n_mated", "cmc", "rank_identification_rate", "fnir_at_rank", "fnir_at_fpir"):
            assert got[key] == expected[key], key
        assert "penetration_rate" in expected and "penetration_rate" not in got
    capsys.readouterr()
    assert _run(["metrics", run, native]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{run}: 15 searches") and "penetration" not in lines[0] and "penetration" in lines[1]
    assert _run(["report", run, native, "-o", tmp_path / "report"]) == 0
    assert "external + mcc-elsewhere" in (tmp_path / "report" / "report.md").read_text()


def test_candidate_lists_against_the_gallery_of_a_dataset(tmp_path, embedded_synthetic):
    """Without a protocol file, the gallery and probes come from the dataset's images as
    'fingerbench identify -d' makes them: impression 1 enrolled, the others searched."""
    lines = ["probe,reference,score"]
    for f in range(1, 11):
        for i in range(2, 9):
            other = f % 10 + 1
            lines += [f"{f}_{i},{f}_1,0.9", f"{f}_{i},{other}_1,0.{i}"]
    lists = tmp_path / "lists.csv"
    lists.write_text("\n".join(lines) + "\n")
    assert _run(["import", lists, "-d", "synthetic", "--dataset-path", embedded_synthetic, "--format", "candidates",
                 "--name", "perfect", "--higher-is-better", "-o", tmp_path / "runs"]) == 0
    run = next((tmp_path / "runs" / "identify").glob("*/external+perfect"))
    m = _identification(run)
    assert m["n_searches"] == 70 and m["n_mated"] == 70 and m["rank_identification_rate"]["1"] == 1.0
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["protocol"]["n_gallery_templates"] == 10 and len(manifest["templates"]["dataset"]["sha256"]) == 64


CANDIDATE_HEAD = "probe,candidate,score,rank\n"
ALL_PROBES = "".join(f"{p},,,\n" for p in ("b_2", "c_2", "d_2", "x_1", "y_1"))
BAD_LISTS = [
    (CANDIDATE_HEAD + "z_9,a_1,0.5,1\n" + ALL_PROBES, [], "line 2: probe 'z_9' is not a probe of protocol"),
    (CANDIDATE_HEAD + "a_1,a_2,0.5,1\n" + ALL_PROBES, [], "(a gallery template: probes and gallery are swapped?)"),
    (CANDIDATE_HEAD + "a_3,a_1,0.5,1\na_3,a_1,0.4,2\n" + ALL_PROBES, [],
     "line 3: candidate 'a_1' of probe 'a_3' again (first on line 2)"),
    (CANDIDATE_HEAD + "a_3,a_1,high,1\n" + ALL_PROBES, [], "line 2: score 'high' is not a finite number"),
    (CANDIDATE_HEAD + "a_3,a_1,0.5,1\na_3,b_1,0.4,2\na_3,c_1,0.3,3\n" + ALL_PROBES, ["-L", "2"],
     "line 4: probe 'a_3' has 3 candidates, more than the 2 declared (--candidates)"),
    (CANDIDATE_HEAD + "a_3,q_1,0.5,1\n" + ALL_PROBES, [],
     "line 2: candidate 'q_1' of probe 'a_3' is neither a gallery template nor a gallery subject"),
    (CANDIDATE_HEAD + "a_3,a_1,0.5,1\n", [], "no row for 5 of the 6 probes of protocol"),
    (CANDIDATE_HEAD + "a_3,a_1,0.5,1\na_3,b_1,0.6,2\n" + ALL_PROBES, [],
     "line 3: rank 2 of probe 'a_3' has a better score (0.6) than rank 1 (0.5); ranks must follow the scores"),
    (CANDIDATE_HEAD + "a_3,a_1,0.5,1\na_3,b_1,0.4,3\n" + ALL_PROBES, [], "line 3: rank 3 of probe 'a_3'"),
    (CANDIDATE_HEAD + "a_3,a_1,0.5,1\na_3,b_1,0.4,\n" + ALL_PROBES, [], "line 3: no rank, while other candidates"),
    (CANDIDATE_HEAD + "a_3,a_1,0.5,first\n" + ALL_PROBES, [], "line 2: rank 'first' is not a whole number"),
    (CANDIDATE_HEAD + "a_3,,0.5,\n" + ALL_PROBES, [], "line 2: the candidate is empty"),
    ("probe,score\na_3,0.5\n", [], "no column 'candidate'"),
]


@pytest.mark.parametrize("content, extra, words", BAD_LISTS, ids=[b[2][:40] for b in BAD_LISTS])
def test_bad_candidate_lists_are_refused_with_the_file_and_line(tmp_path, caplog, content, extra, words):
    protocol = tmp_path / "protocol.csv"
    protocol.write_text(PROTOCOL)
    path = tmp_path / "lists.csv"
    path.write_text(content)
    out = tmp_path / "r"
    assert _run(["import", path, "-d", "mine", "--name", "x", "--higher-is-better", "--format", "candidates",
                 "-p", protocol, "--run-dir", out, *extra]) == 2
    assert str(path) in caplog.text and words in caplog.text, caplog.text
    assert not out.exists()


def test_candidate_lists_need_a_gallery_and_a_run_is_not_overwritten(tmp_path, caplog):
    path = tmp_path / "lists.csv"
    path.write_text(CANDIDATE_HEAD + "a_3,a_1,0.5,1\n" + ALL_PROBES)
    assert _run(["import", path, "-d", "mine", "--name", "x", "--higher-is-better", "--run-dir", tmp_path / "r"]) == 2
    assert "need the gallery and the probes: give -p PROTOCOL.csv" in caplog.text
    protocol = tmp_path / "protocol.csv"
    protocol.write_text(PROTOCOL)
    args = ["import", path, "-d", "mine", "--name", "x", "--higher-is-better", "-p", protocol, "--run-dir", tmp_path / "r"]
    assert _run(args) == 0
    assert _run(args) == 2 and "holds a run already" in caplog.text
    assert _run([*args, "--force"]) == 0
    assert _run(["import", path, "-d", "mine", "--name", "x", "--higher-is-better", "-p", "fvc", "--format", "pairs",
                 "-L", "3", "--run-dir", tmp_path / "r2"]) == 2
    assert "--candidates applies to 1:N candidate lists" in caplog.text
