"""End to end on the real FVC B sets with NBIS, through the command line (the kill-and-resume
check also on the embedded synthetic set, which every checkout has).

These are the core issue's acceptance checks: published pair counts, metrics equal to an
independent recomputation from the stored scores, a run killed with SIGKILL and resumed
gives identical scores, and a damaged dataset folder runs to the end reporting the damage.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.cli import main

B_SETS = [f"fvc{y}-db{d}-b" for y in (2000, 2002) for d in (1, 2, 3, 4)]


def brute_force(genuine: np.ndarray, impostor: np.ndarray) -> dict:
    """FVC metrics by direct counting at every candidate threshold (no shared code)."""
    thresholds = sorted(set(genuine.tolist()) | set(impostor.tolist()))
    thresholds.append(max(thresholds) + 1.0)
    fmr = [float(np.mean(impostor >= t)) for t in thresholds]
    fnmr = [float(np.mean(genuine < t)) for t in thresholds]
    t1 = max(i for i in range(len(thresholds)) if fnmr[i] <= fmr[i])
    t2 = min(i for i in range(len(thresholds)) if fnmr[i] >= fmr[i])
    if fnmr[t1] + fmr[t1] <= fmr[t2] + fnmr[t2]:
        low, high = fnmr[t1], fmr[t1]
    else:
        low, high = fmr[t2], fnmr[t2]

    def best_fnmr(limit: float) -> float | None:
        if 0 < limit < 1 / len(impostor):
            return None
        return min(fnmr[i] for i in range(len(thresholds)) if fmr[i] <= limit + 1e-12)

    return {"eer": (low + high) / 2, "eer_low": low, "eer_high": high,
            "fmr100": best_fnmr(1e-2), "fmr1000": best_fnmr(1e-3), "fmr10000": best_fnmr(1e-4),
            "zero_fmr": best_fnmr(0.0),
            "zero_fnmr": min(fmr[i] for i in range(len(thresholds)) if fnmr[i] == 0)}


@pytest.fixture(scope="module")
def runs(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    for name in B_SETS:
        for protocol in ("fvc", "all-pairs"):
            rc = main(["run", "-q", "-d", name, "--data-root", str(shared_data), "-p", protocol,
                       "-e", "mindtct", "-m", "bozorth3", "-o", str(out)])
            assert rc == 0
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", B_SETS)
@pytest.mark.parametrize("protocol,n_gen,n_imp", [("fvc", 280, 45), ("all-pairs", 280, 2880)])
def test_nbis_on_b_sets_counts_and_recomputed_metrics(runs, name, protocol, n_gen, n_imp):
    run = runs / name / protocol / "mindtct+bozorth3"
    scores = pd.read_csv(run / "scores.csv")
    assert (scores["genuine"] == 1).sum() == n_gen and (scores["genuine"] == 0).sum() == n_imp
    assert (scores["status"] == "ok").all()
    assert np.array_equal(scores["score"], np.round(scores["score"]))  # BOZORTH3's raw integers
    metrics = json.loads((run / "metrics.json").read_text())["accuracy"]
    assert (metrics["n_genuine"], metrics["n_impostor"]) == (n_gen, n_imp)
    expected = brute_force(scores.loc[scores["genuine"] == 1, "score"].to_numpy(float),
                           scores.loc[scores["genuine"] == 0, "score"].to_numpy(float))
    for key, value in expected.items():
        if value is None:
            assert metrics[key] is None and "unresolvable" in metrics["operating_points"][key]["reason"]
        else:
            assert metrics[key] == pytest.approx(value, abs=1e-12), key
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["dataset"]["dpi"] == (569 if name == "fvc2002-db2-b" else 500)
    assert manifest["matcher"]["version"].startswith("nbis-py")


@pytest.mark.slow
@pytest.mark.parametrize("dataset,protocol,n_pairs", [("synthetic", "fvc", 325), ("fvc2002-db1-b", "all-pairs", 3160)])
def test_sigkill_mid_run_then_resume_gives_identical_scores(dataset, protocol, n_pairs, request, tmp_path):
    """On the embedded synthetic set (every checkout has it; the FVC protocol keeps it short)
    and on FVC2002 DB1_B where the real data is present."""
    if dataset == "synthetic":
        source = ["-d", dataset, "--dataset-path", str(request.getfixturevalue("embedded_synthetic"))]
    else:
        source = ["-d", dataset, "--data-root", str(request.getfixturevalue("shared_data"))]
    env = {**os.environ, "FINGERBENCH_CACHE": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "bench", "run", "-q", *source,
           "-p", protocol, "-e", "mindtct", "-m", "bozorth3", "-o", str(tmp_path / "runs"),
           "--jobs", "1", "--chunk-size", "8"]
    run = tmp_path / "runs" / dataset / protocol / "mindtct+bozorth3"
    proc = subprocess.Popen(cmd, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    scores_csv = run / "scores.csv"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if scores_csv.exists() and scores_csv.stat().st_size > 4000:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_rows = len(pd.read_csv(scores_csv))
    assert 0 < killed_rows < n_pairs, "the run should have been killed mid-way"

    assert subprocess.run(cmd, env=env).returncode == 0
    resumed = pd.read_csv(scores_csv)
    assert len(resumed) >= n_pairs
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["last_session"]["compared"] <= n_pairs - killed_rows + 8 * 2

    fresh_cmd = cmd[:]
    fresh_cmd[fresh_cmd.index("-o") + 1] = str(tmp_path / "fresh")
    env_fresh = {**env, "FINGERBENCH_CACHE": str(tmp_path / "cache-fresh")}
    assert subprocess.run(fresh_cmd, env=env_fresh).returncode == 0
    fresh_run = tmp_path / "fresh" / dataset / protocol / "mindtct+bozorth3"
    fresh = pd.read_csv(fresh_run / "scores.csv")
    key = ["probe", "reference"]
    a = resumed.drop_duplicates(key, keep="last").sort_values(key).reset_index(drop=True)
    b = fresh.sort_values(key).reset_index(drop=True)
    assert a[key].equals(b[key])
    assert np.array_equal(a["score"].to_numpy(), b["score"].to_numpy())
    assert json.loads((run / "metrics.json").read_text())["accuracy"] == json.loads(
        (fresh_run / "metrics.json").read_text())["accuracy"]


@pytest.mark.slow
def test_damaged_dataset_runs_to_the_end(shared_data, tmp_path, caplog):
    root = tmp_path / "DB1_B"
    shutil.copytree(shared_data / "fvc2002" / "DB1_B", root)
    (root / "103_4.tif").write_bytes((root / "103_4.tif").read_bytes()[:2000])  # truncated
    (root / "105_1.tif").unlink()  # missing
    rc = main(["run", "-d", "fvc2002-db1-b", "--dataset-path", str(root), "-e", "mindtct", "-m", "bozorth3",
               "-o", str(tmp_path / "runs")])
    assert rc == 0
    run = tmp_path / "runs" / "fvc2002-db1-b" / "fvc" / "mindtct+bozorth3"
    problems = json.loads((run / "problems.json").read_text())
    kinds = {(p["kind"], Path(p["path"]).name) for p in problems}
    assert ("unreadable", "103_4.tif") in kinds and ("missing", "105_1.tif") in kinds
    ext = pd.read_csv(run / "extractions.csv").set_index("sample")
    assert ext.loc["103_4", "status"] == "unreadable" and "103_4.tif" in ext.loc["103_4", "error"]
    assert ext.loc["105_1", "status"] == "missing"
    scores = pd.read_csv(run / "scores.csv")
    assert len(scores) == 325  # the published pair count is kept; failures are ghosts
    ghosts = scores[scores["status"] == "enrol_failed"]
    assert set(ghosts["probe"]) | set(ghosts["reference"]) >= {"103_4", "105_1"}
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["enrolment"]["rej_enroll"] == 2
    assert metrics["accuracy"]["n_enrol_failed_comparisons"] == len(ghosts) == 7 + 9 + 7
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "103_4.tif" in messages and "105_1" in messages


@pytest.mark.slow
def test_default_job_runs_every_builtin_family_on_the_synthetic_set(tmp_path, monkeypatch, capsys):
    """The README's main job: no argument, embedded synthetic set, report at the end."""
    monkeypatch.chdir(tmp_path)
    assert main(["run", "-q"]) == 0
    out = capsys.readouterr().out
    for pair in ("mindtct+bozorth3", "classic+mcc"):
        run = tmp_path / "runs" / "synthetic" / "fvc" / pair
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["accuracy"]["n_genuine"] == 280 and metrics["accuracy"]["n_impostor"] == 45
        assert 0.0 <= metrics["accuracy"]["eer"] < 0.5
        assert pair in out
    assert (tmp_path / "runs" / "report" / "report.html").is_file()
    # a second run reuses the generated set, the templates and the scores
    assert main(["run", "-q"]) == 0
