"""Nothing silently wrong: damaged caches, tampered records and misbehaving plugins.

Each test damages one thing that a run depends on and checks that the run then gives the
same numbers as an undamaged run, or refuses with an error naming the file and the fault.
The datasets are tiny synthetic image folders, so these tests need no real data.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from bench import protocols
from bench.datasets.base import Dataset
from bench.cli import main
from bench.metrics.summary import evaluate_run
from bench.plugins.loading import PluginSpec
from bench.runner import RunConfig, run_benchmark
from bench.store.template_cache import extractor_key
from bench.store import RunDirError
from conftest import dummy, folder_dataset



def make_images(root: Path, subjects: int = 4, impressions: int = 3, seed: int = 0) -> Path:
    """Images where impressions of one subject share a dark-cell pattern (genuine pairs score high)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for s in range(subjects):
        base = rng.uniform(60, 200, (12, 12))
        for i in range(impressions):
            cells = base + rng.normal(0, 12, base.shape)
            img = np.kron(cells, np.ones((8, 8))).clip(0, 255).astype(np.uint8)
            cv2.imwrite(str(root / f"{101 + s}_{i + 1}.png"), img)
    return root


def config(tmp_path: Path, extractor="ToyExtractor", matcher="ToyMatcher", **kw) -> RunConfig:
    return RunConfig(
        extractor=PluginSpec("extractor", extractor, dummy(extractor),
                             kw.pop("extractor_params", {"cell": 8, "keep": 12})),
        matcher=PluginSpec("matcher", matcher, dummy(matcher), kw.pop("matcher_params", {})),
        out=kw.pop("out", tmp_path / "run"), cache_dir=kw.pop("cache_dir", tmp_path / "cache"),
        jobs=kw.pop("jobs", 1), progress=False, **kw,
    )


@pytest.fixture
def toy(tmp_path) -> Dataset:
    return folder_dataset(make_images(tmp_path / "images"))


def sorted_scores(run_dir: Path) -> pd.DataFrame:
    df = pd.read_csv(run_dir / "scores.csv")
    return df.sort_values(["probe", "reference"]).reset_index(drop=True)[
        ["probe", "reference", "score", "status"]]


def template_dir(cfg: RunConfig, run_dir: Path) -> Path:
    manifest = json.loads((run_dir / "manifest.json").read_text())
    return cfg.cache_dir / "templates" / extractor_key(manifest["extractor"])


def cache_files(cfg: RunConfig, run_dir: Path, sample: str) -> tuple[Path, Path]:
    manifest = json.loads((run_dir / "manifest.json").read_text())
    digest = manifest["dataset"]["files_sha256"][sample]
    tdir = template_dir(cfg, run_dir)
    return tdir / f"{digest}.npz", tdir / f"{digest}.json"


# ------------------------------------------------------------------ 1, 2: the template cache
@pytest.mark.parametrize("damage", ["random", "truncated", "empty"])
def test_damaged_cached_template_is_detected_and_recomputed(toy, tmp_path, damage, caplog):
    pairs = protocols.all_pairs(toy)
    first = run_benchmark(toy, pairs, config(tmp_path))
    cfg = config(tmp_path, matcher="BatchToyMatcher", out=tmp_path / "run2")
    npz, _ = cache_files(cfg, first.run_dir, "102_1")
    data = npz.read_bytes()
    npz.write_bytes({"random": np.random.default_rng(1).bytes(len(data)), "truncated": data[: len(data) // 2],
                     "empty": b""}[damage])
    with caplog.at_level(logging.INFO):
        second = run_benchmark(toy, pairs, cfg)  # another matcher: reuses the cache
    assert second.n_extracted == 1
    assert "damaged or replaced" in caplog.text and npz.name in caplog.text
    assert sorted_scores(second.run_dir).equals(sorted_scores(first.run_dir))
    assert npz.read_bytes() == data  # recomputed, so later runs use it again

    npz.write_bytes(b"")  # damaged after a complete run: resuming it recomputes the template
    again = run_benchmark(toy, pairs, cfg)
    assert again.n_extracted == 1 and (sorted_scores(again.run_dir)["status"] == "ok").all()
    assert again.metrics["accuracy"] == first.metrics["accuracy"]


def test_edited_or_foreign_cache_entries_are_not_used(toy, tmp_path, caplog):
    pairs = protocols.fvc(toy)
    cfg = config(tmp_path)
    clean = run_benchmark(toy, pairs, cfg)
    npz_a, rec_a = cache_files(cfg, clean.run_dir, "101_1")
    npz_b, rec_b = cache_files(cfg, clean.run_dir, "103_2")
    npz_c, rec_c = cache_files(cfg, clean.run_dir, "104_1")
    npz_d, rec_d = cache_files(cfg, clean.run_dir, "101_2")
    # a record edited to another status
    rec = json.loads(rec_a.read_text())
    rec["status"] = "fte"
    rec_a.write_text(json.dumps(rec))
    # another image's template copied over one
    shutil.copy(npz_a, npz_b)
    # another image's whole entry (template and record) copied over one
    shutil.copy(npz_d, npz_c)
    shutil.copy(rec_d, rec_c)
    shutil.rmtree(clean.run_dir)
    with caplog.at_level(logging.INFO):
        again = run_benchmark(toy, pairs, cfg)
    assert again.n_extracted == 3
    text = caplog.text
    assert "checksum does not match" in text and rec_a.name in text
    assert "damaged or replaced" in text and npz_b.name in text
    assert "made from another image" in text and rec_c.name in text
    assert again.metrics["accuracy"] == clean.metrics["accuracy"]
    assert again.metrics["enrolment"]["rej_enroll"] == 0


def test_cache_entries_of_an_older_format_are_recomputed(toy, tmp_path, caplog):
    pairs = protocols.fvc(toy)
    cfg = config(tmp_path)
    clean = run_benchmark(toy, pairs, cfg)
    tdir = template_dir(cfg, clean.run_dir)
    for rec in tdir.glob("*.json"):  # the record layout of format 1: no provenance, no checksums
        old = json.loads(rec.read_text())
        rec.write_text(json.dumps({k: old[k] for k in ("status", "error", "n_minutiae", "template_bytes", "seconds")}))
    shutil.rmtree(clean.run_dir)
    with caplog.at_level(logging.WARNING):
        again = run_benchmark(toy, pairs, cfg)
    assert again.n_extracted == 12
    assert "12 template cache entries cannot be used" in caplog.text and "cache format None" in caplog.text
    assert again.metrics["accuracy"] == clean.metrics["accuracy"]


# ------------------------------------------------------------------ 5: --retry-failed
def flaky(tmp_path: Path, error: str, **kw) -> RunConfig:
    params = {"cell": 8, "keep": 12, "fail_while": str(tmp_path / "fail"), "error": error}
    return config(tmp_path, extractor="FlakyExtractor", extractor_params=params, **kw)


def test_retry_failed_recomputes_every_comparison_of_a_retried_template(toy, tmp_path):
    pairs = protocols.all_pairs(toy)
    (tmp_path / "fail").touch()
    broken = run_benchmark(toy, pairs, flaky(tmp_path, "RuntimeError"))
    n_failed = broken.metrics["enrolment"]["rej_enroll"]
    assert 0 < n_failed < 12
    (tmp_path / "fail").unlink()
    retried = run_benchmark(toy, pairs, flaky(tmp_path, "RuntimeError", retry_failed=True))
    assert retried.n_extracted == n_failed
    fresh = run_benchmark(toy, pairs, flaky(tmp_path, "RuntimeError", out=tmp_path / "fresh",
                                            cache_dir=tmp_path / "cache2"))
    assert fresh.metrics["enrolment"]["rej_enroll"] == retried.metrics["enrolment"]["rej_enroll"] == 0
    assert sorted_scores(retried.run_dir).equals(sorted_scores(fresh.run_dir))
    assert retried.metrics["accuracy"] == fresh.metrics["accuracy"]
    assert evaluate_run(retried.run_dir, write=False)["accuracy"] == fresh.metrics["accuracy"]


def test_which_failures_are_cached_and_why(toy, tmp_path, caplog):
    pairs = protocols.fvc(toy)
    (tmp_path / "fail").touch()
    with caplog.at_level(logging.WARNING):
        oom = run_benchmark(toy, pairs, flaky(tmp_path, "MemoryError"))
        n_oom = oom.metrics["enrolment"]["rej_enroll"]
        assert n_oom > 0 and "MemoryError" in caplog.text and "not cached" in caplog.text
        err = run_benchmark(toy, pairs, flaky(tmp_path, "RuntimeError", out=tmp_path / "err"))
    n_err = err.metrics["enrolment"]["rej_enroll"]
    (tmp_path / "fail").unlink()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        # a MemoryError says nothing about the image: a later run (another folder) tries again
        oom2 = run_benchmark(toy, pairs, flaky(tmp_path, "MemoryError", out=tmp_path / "oom2"))
        assert oom2.n_extracted == n_oom and oom2.metrics["enrolment"]["rej_enroll"] == 0
        # an exception the extractor raises is cached, and the run says so
        err2 = run_benchmark(toy, pairs, flaky(tmp_path, "RuntimeError", out=tmp_path / "err2"))
    assert err2.n_extracted == 0 and err2.metrics["enrolment"]["rej_enroll"] == n_err
    assert f"{n_err} failures to enrol reused from the template cache" in caplog.text
    assert "--retry-failed recomputes them" in caplog.text


# ------------------------------------------------------------------ 3, 4: reading a run's records
@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    """One complete run on the toy set (all pairs), made once for the tests that damage a copy."""
    root = tmp_path_factory.mktemp("base")
    ds = folder_dataset(make_images(root / "images"))
    pairs = protocols.all_pairs(ds)
    return ds, pairs, run_benchmark(ds, pairs, config(root)), root


@pytest.fixture
def finished(base_run, tmp_path):
    """A copy of the base run, with a configuration that resumes the copy."""
    ds, pairs, summary, root = base_run
    shutil.copytree(summary.run_dir, tmp_path / "run")
    cfg = config(root, out=tmp_path / "run")
    copy = type(summary)(tmp_path / "run", summary.n_extracted, summary.n_compared, summary.seconds, summary.metrics)
    return copy, cfg, pairs


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


def test_truncated_last_row_is_refused_by_metrics_and_recomputed_by_a_resumed_run(finished, caplog):
    summary, cfg, pairs = finished
    toy = folder_dataset(cfg.cache_dir.parent / "images")
    scores = summary.run_dir / "scores.csv"
    lines = _lines(scores)
    cut = lines[-1].split(",")
    scores.write_text("".join(lines[:-1]) + ",".join(cut[:6]) + "\n")  # cut after the score, newline kept
    with pytest.raises(RunDirError, match=rf"scores.csv, line {len(lines)}: 6 fields where the header has 9"):
        evaluate_run(summary.run_dir)
    with caplog.at_level(logging.WARNING):
        resumed = run_benchmark(toy, pairs, cfg)
    assert resumed.n_compared == 1 and "1 damaged rows are dropped and recomputed" in caplog.text
    assert resumed.metrics["accuracy"] == summary.metrics["accuracy"]


def test_one_manifest_schema_names_the_kind_of_run(finished, tmp_path):
    """1:1 and 1:N runs share one manifest schema; reading one kind as the other names both."""
    from bench.identification.report import load_id_run
    from bench.metrics.summary import evaluate_identification_run as evaluate_1n
    from bench.report.rundata import load_run

    summary, _, _ = finished
    manifest = json.loads((summary.run_dir / "manifest.json").read_text())
    assert (manifest["schema"], manifest["schema_version"], manifest["kind"]) == ("fingerbench-run", 2, "verification")
    for read in (evaluate_1n, load_id_run):
        with pytest.raises(RunDirError, match=r"manifest.json: a verification \(1:1\) run, not an identification"):
            read(summary.run_dir)
    _edit_manifest(summary.run_dir, lambda m: m.update(kind="identification"))
    with pytest.raises(RunDirError, match=r"an identification \(1:N\) run, not a verification \(1:1\) run"):
        load_run(summary.run_dir)
    _edit_manifest(summary.run_dir, lambda m: m.update(kind="enrolment"))
    for read in (evaluate_run, load_run):
        with pytest.raises(RunDirError, match=r"unknown kind of run 'enrolment'"):
            read(summary.run_dir)


@pytest.mark.parametrize("bad_score", ["abc", "inf", "1e400", "nan", ""])
def test_a_non_numeric_ok_score_is_refused_with_file_and_line(finished, bad_score):
    summary, cfg, pairs = finished
    toy = folder_dataset(cfg.cache_dir.parent / "images")
    scores = summary.run_dir / "scores.csv"
    df = pd.read_csv(scores, dtype=str, keep_default_na=False)
    row = int(np.flatnonzero(df["status"] == "ok")[3])
    df.loc[row, "score"] = bad_score
    df.to_csv(scores, index=False)
    with pytest.raises(RunDirError, match=rf"scores.csv, line {row + 2}: 1 rows with status 'ok' have no numeric"):
        evaluate_run(summary.run_dir)
    assert main(["metrics", str(summary.run_dir)]) == 2
    resumed = run_benchmark(toy, pairs, cfg)  # a resumed run recomputes that comparison
    assert resumed.n_compared == 1 and resumed.metrics["accuracy"] == summary.metrics["accuracy"]


def _rename_column(path: Path) -> None:
    lines = _lines(path)
    path.write_text(lines[0].replace("score", "similarity") + "".join(lines[1:]))


def _duplicate_row(path: Path) -> None:
    lines = _lines(path)
    path.write_text("".join(lines) + lines[5])


def _set_status(path: Path, status: str) -> None:
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df.loc[2, "status"] = status
    df.to_csv(path, index=False)


def _drop_pair_everywhere(run_dir: Path) -> None:
    for name in ("pairs.csv", "scores.csv"):
        df = pd.read_csv(run_dir / name, dtype=str, keep_default_na=False)
        df = df[~((df["probe"] == "102_2") & (df["reference"] == "101_1"))]
        df.to_csv(run_dir / name, index=False)


def _relabel_pair_everywhere(run_dir: Path) -> None:
    for name in ("pairs.csv", "scores.csv"):
        df = pd.read_csv(run_dir / name, dtype=str, keep_default_na=False)
        i = df.index[df["genuine"] == "1"][0]
        df.loc[i, "genuine"] = "0"
        if name == "scores.csv":
            df.loc[i, "reference_subject"] = "other"
        df.to_csv(run_dir / name, index=False)


TAMPERED = {
    "renamed column": (lambda r: _rename_column(r / "scores.csv"), r"scores.csv: columns .* expected"),
    "empty scores": (lambda r: (r / "scores.csv").write_text(""), r"scores.csv: empty file"),
    "empty pairs": (lambda r: (r / "pairs.csv").write_text(""), r"pairs.csv: empty file"),
    "empty extractions": (lambda r: (r / "extractions.csv").write_text(""), r"extractions.csv: empty file"),
    "duplicate row": (lambda r: _duplicate_row(r / "scores.csv"),
                      r"scores.csv: 2 rows repeat a pair .* lines \[6, \d+\]"),
    "unknown status": (lambda r: _set_status(r / "scores.csv", "okish"),
                       r"scores.csv, line 4: unknown status \['okish'\]"),
    "unknown extraction status": (lambda r: _set_status(r / "extractions.csv", "fine"),
                                  r"extractions.csv, line 4: unknown status \['fine'\]"),
    "pair dropped from both tables": (_drop_pair_everywhere, r"pairs.csv: its SHA-256 differs from the pairs_sha256"),
    "pair relabelled in both tables": (_relabel_pair_everywhere, r"pairs.csv: its SHA-256 differs"),
    "file digest edited": (lambda r: _edit_manifest(r, lambda m: m["dataset"]["files_sha256"].update(
                               {"101_1": "0" * 64})),
                           r"manifest.json: dataset.sha256 is not the digest of dataset.files_sha256"),
}


def _edit_manifest(run_dir: Path, edit) -> None:
    manifest = json.loads((run_dir / "manifest.json").read_text())
    edit(manifest)
    (run_dir / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_metrics_on_a_tampered_run_names_the_file_and_the_fault(finished, case, caplog):
    summary, _, _ = finished
    damage, message = TAMPERED[case]
    damage(summary.run_dir)
    with pytest.raises(RunDirError, match=message):
        evaluate_run(summary.run_dir)
    assert main(["metrics", str(summary.run_dir)]) == 2
    assert str(summary.run_dir) in caplog.text


# ------------------------------------------------------------------ 8: one writer per folder and per file
def test_a_run_folder_is_locked_while_a_run_writes_there(finished, tmp_path):
    import subprocess
    import sys

    summary, cfg, pairs = finished
    toy = folder_dataset(cfg.cache_dir.parent / "images")
    before = (summary.run_dir / "scores.csv").read_bytes()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom bench.store import RunDir\n"
                               "with RunDir(sys.argv[1]).lock():\n    print('locked', flush=True)\n    time.sleep(60)",
         str(summary.run_dir)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunDirError, match=rf"{summary.run_dir}: another FingerBench run is writing to this "
                                              rf"folder \(pid {holder.pid} since"):
            run_benchmark(toy, pairs, config(cfg.cache_dir.parent, out=summary.run_dir, force=True))
    finally:
        holder.kill()
        holder.wait()
    assert (summary.run_dir / "scores.csv").read_bytes() == before
    assert run_benchmark(toy, pairs, cfg).n_compared == 0  # the lock died with its holder


def test_concurrent_writers_of_one_file_never_collide(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from bench.template import Template, make_minutiae

    target = tmp_path / "entry.npz"
    templates = [Template(make_minutiae(np.arange(i + 1), np.arange(i + 1), np.zeros(i + 1)), 64, 64, 500)
                 for i in range(8)]

    def write(i: int) -> None:
        for _ in range(40):
            templates[i].save(target)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(8)))  # raises if one writer's temporary file was taken by another
    assert target.read_bytes() in [t.to_npz_bytes() for t in templates]
    assert [p.name for p in tmp_path.iterdir()] == ["entry.npz"]


# ------------------------------------------------------------------ 9: only the engine's own files
def test_force_never_touches_a_folder_that_is_not_a_run(toy, tmp_path):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "scores.csv").write_text("my own scores\n")
    (user / "metrics.json").write_text("{}\n")
    for force in (False, True):
        with pytest.raises(RunDirError, match=rf"{user}: holds files but is not a FingerBench run folder"):
            run_benchmark(toy, protocols.fvc(toy), config(tmp_path, out=user, force=force))
    assert sorted(p.name for p in user.iterdir()) == ["metrics.json", "scores.csv"]
    assert (user / "scores.csv").read_text() == "my own scores\n"


def test_a_refused_run_leaves_no_folder_behind(toy, tmp_path):
    from bench.plugins.registry import PluginError

    out = tmp_path / "runs" / "toy" / "fvc" / "new"
    with pytest.raises(PluginError, match="bad parameters"):
        run_benchmark(toy, protocols.fvc(toy), config(tmp_path, out=out, matcher_params={"no_such": 1}))
    assert not (tmp_path / "runs").exists()


def test_force_removes_only_the_runs_own_files(finished):
    summary, cfg, pairs = finished
    toy = folder_dataset(cfg.cache_dir.parent / "images")
    (summary.run_dir / "notes.txt").write_text("kept\n")
    forced = run_benchmark(toy, pairs, config(cfg.cache_dir.parent, out=summary.run_dir, force=True))
    assert (summary.run_dir / "notes.txt").read_text() == "kept\n"
    assert forced.metrics["accuracy"] == summary.metrics["accuracy"]


def test_a_report_never_replaces_files_it_did_not_write(finished, tmp_path, caplog):
    from bench.report import write_report

    summary, _, _ = finished
    user = tmp_path / "mine"
    user.mkdir()
    (user / "report.html").write_text("my page\n")
    with pytest.raises(RunDirError, match=rf"{user / 'report.html'}: exists and was not written by a FingerBench"):
        write_report([summary.run_dir], user, n_replicates=20, worst_k=0)
    assert main(["report", "-q", str(summary.run_dir), "-o", str(user), "--bootstrap", "20"]) != 0
    assert "not written by a FingerBench report" in caplog.text
    assert sorted(p.name for p in user.iterdir()) == ["report.html"]
    assert (user / "report.html").read_text() == "my page\n"

    ours = tmp_path / "ours"
    first = write_report([summary.run_dir], ours, n_replicates=20, worst_k=0)
    (ours / "notes.txt").write_text("kept\n")
    again = write_report([summary.run_dir], ours, n_replicates=20, worst_k=0)  # its own files: replaced
    assert first == again and (ours / "notes.txt").read_text() == "kept\n"
    figure = sorted((ours / "figures").iterdir())[0]
    marker = json.loads((ours / ".fingerbench-report.json").read_text())
    assert f"figures/{figure.name}" in marker["files"] and "report.html" in marker["files"]


# ------------------------------------------------------------------ 6: plugins that misbehave
@pytest.mark.parametrize("mode,fault", [
    ("raise", r"RuntimeError: toy constructor failure"),
    ("exit", r"SystemExit: 3"),
    ("segv", r"worker process killed by signal SIGSEGV"),
    ("hang", r"timed out after 2 s"),
])
def test_a_plugin_constructor_that_fails_is_reported_not_fatal(toy, tmp_path, mode, fault):
    from bench.plugins.registry import PluginError

    cfg = config(tmp_path, matcher="BrokenInitMatcher", matcher_params={"mode": mode}, init_timeout=2.0)
    with pytest.raises(PluginError, match=rf"matcher 'BrokenInitMatcher' could not be constructed: {fault}"):
        run_benchmark(toy, protocols.fvc(toy), cfg)
    assert not cfg.out.exists()


def test_a_constructor_that_segfaults_does_not_take_the_command_down(tmp_path, caplog):
    root = make_images(tmp_path / "images")
    argv = ["run", "-q", "-d", "folder", "--dataset-path", str(root), "--dataset-param", "dpi=500",
            "-e", dummy("ToyExtractor"), "-m", dummy("BrokenInitMatcher"), "--matcher-param", "mode=segv",
            "-o", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache"), "--jobs", "1"]
    assert main(argv) == 1
    assert ("matcher 'BrokenInitMatcher' could not be constructed: worker process killed by signal SIGSEGV"
            in caplog.text)
    assert not (tmp_path / "runs").exists()


def test_sys_exit_and_keyboard_interrupt_in_plugins_cost_one_item(tmp_path):
    root = make_images(tmp_path / "images")
    for name, width in (("102_1", 88), ("103_1", 80)):
        img = cv2.imread(str(root / f"{name}.png"), 0)
        cv2.imwrite(str(root / f"{name}.png"), img[:, :width])
    ds = folder_dataset(root)
    pairs = protocols.fvc(ds)
    cfg = config(tmp_path, extractor="ExitingExtractor", matcher="InterruptingMatcher",
                 extractor_params={"cell": 8, "keep": 12, "exit_width": 88}, matcher_params={"interrupt_width": 80})
    summary = run_benchmark(ds, pairs, cfg)
    ext = pd.read_csv(summary.run_dir / "extractions.csv").set_index("sample")
    assert ext.loc["102_1", "status"] == "error" and "SystemExit: 3" in ext.loc["102_1", "error"]
    scores = pd.read_csv(summary.run_dir / "scores.csv")
    interrupted = scores[scores["reference"] == "103_1"]
    assert len(interrupted) > 0 and (interrupted["status"] == "failed").all()
    assert interrupted["error"].str.startswith("KeyboardInterrupt").all()
    others = scores[(scores["reference"] != "103_1") & ~scores["probe"].eq("102_1") & ~scores["reference"].eq("102_1")]
    assert (others["status"] == "ok").all()
    assert run_benchmark(ds, pairs, cfg).n_compared == 0  # a rerun resumes; nothing aborts


# ------------------------------------------------------------------ the 1:N side (items 2, 4, 6)
def test_identification_sources_recompute_a_damaged_cache_entry(toy, tmp_path, caplog):
    from bench.identification.sources import CACHED, TemplateSources, _make_templates

    spec = PluginSpec("extractor", "ToyExtractor", dummy("ToyExtractor"), {"cell": 8, "keep": 12})
    ids = [s.id for s in toy.samples]
    first = TemplateSources(dataset=toy, extractor=spec, cache_dir=tmp_path / "cache", jobs=1).locate(ids)
    assert all(loc[0] == CACHED for loc in first.values())
    npz = Path(first["103_2"][1])
    good = npz.read_bytes()
    npz.write_bytes(good[:100])
    with caplog.at_level(logging.WARNING):
        again = TemplateSources(dataset=toy, extractor=spec, cache_dir=tmp_path / "cache", jobs=1).locate(ids)
    assert "damaged or replaced" in caplog.text and "103_2" in caplog.text
    assert npz.read_bytes() == good and again == first
    templates = _make_templates(ids, [again[i] for i in ids], {}, 0)
    assert all(len(t) == 12 for t in templates)


def test_identification_metrics_check_the_recorded_digests(tmp_path):
    from bench.protocols import identification as proto
    from bench.engine.backends import LocalBackend
    from bench.identification.runner import IdentificationConfig, run_identification
    from bench.metrics.summary import evaluate_identification_run as evaluate_1n
    from bench.identification.sources import TemplateSources

    p = proto.synthetic(12, 6, mated_fraction=0.5, gallery_impressions=1, seed=3)
    spec = PluginSpec.resolve("matcher", "mcc")
    run = tmp_path / "run"
    run_identification(p, IdentificationConfig(spec, run, TemplateSources(seed=0, jobs=1), candidates=3,
                                               shard_size=6, probe_batch=6, jobs=1), LocalBackend(jobs=1))
    metrics = evaluate_1n(run)
    csv_text = (run / "protocol.csv").read_text()
    lines = csv_text.splitlines(keepends=True)
    (run / "protocol.csv").write_text("".join(lines[:-1]))  # a probe dropped
    with pytest.raises(RunDirError, match=r"protocol.csv: its SHA-256 differs from protocol.sha256"):
        evaluate_1n(run)
    (run / "protocol.csv").write_text(csv_text)
    assert evaluate_1n(run) == metrics
    _edit_manifest(run, lambda m: m["search"].update(candidates=50))
    with pytest.raises(RunDirError, match=r"manifest.json: 'key' is not the digest"):
        evaluate_1n(run)

    (run / "notes.txt").write_text("kept\n")  # --force removes only what a run writes
    run_identification(p, IdentificationConfig(spec, run, TemplateSources(seed=0, jobs=1), candidates=3,
                                               shard_size=6, probe_batch=6, jobs=1, force=True), LocalBackend(jobs=1))
    timed = ("speed", "records_sha256", "sha256")  # the re-run's timings differ
    assert (run / "notes.txt").read_text() == "kept\n"
    assert {k: v for k, v in evaluate_1n(run).items() if k not in timed} == \
        {k: v for k, v in metrics.items() if k not in timed}


def test_identification_sources_construct_the_extractor_in_a_worker(toy):
    from bench.identification.sources import TemplateSources
    from bench.plugins.registry import PluginError

    spec = PluginSpec("extractor", "BrokenInitExtractor", dummy("BrokenInitExtractor"), {"mode": "segv"})
    sources = TemplateSources(dataset=toy, extractor=spec, jobs=1, init_timeout=5.0)
    with pytest.raises(PluginError, match=r"extractor 'BrokenInitExtractor' could not be constructed: worker "
                                          r"process killed by signal SIGSEGV"):
        sources.identity([s.id for s in toy.samples])


def test_identification_constructs_the_matcher_in_a_worker_first(tmp_path):
    from bench.protocols import identification as proto
    from bench.identification.runner import IdentificationConfig, run_identification
    from bench.identification.sources import TemplateSources
    from bench.plugins.registry import PluginError

    p = proto.synthetic(6, 3, mated_fraction=0.5, gallery_impressions=1, seed=3)
    spec = PluginSpec("matcher", "BrokenInitMatcher", dummy("BrokenInitMatcher"), {"mode": "exit"})
    with pytest.raises(PluginError, match=r"matcher 'BrokenInitMatcher' could not be constructed: SystemExit: 3"):
        run_identification(p, IdentificationConfig(spec, tmp_path / "run", TemplateSources(seed=0, jobs=1), jobs=1))
    assert not (tmp_path / "run").exists()


PLUGIN_SOURCE = '''
import numpy as np
from bench.template import Template, make_minutiae

ANGLE = {angle}


class GridExtractor:
    version = "1"
    template_format = "minutiae"

    def extract(self, image, dpi):
        h, w = image.shape
        cells = image[: h // 8 * 8, : w // 8 * 8].reshape(h // 8, 8, w // 8, 8).mean(axis=(1, 3))
        ys, xs = np.unravel_index(np.argsort(cells, axis=None, kind="stable")[:12], cells.shape)
        return Template(make_minutiae(xs * 8 + 4, ys * 8 + 4, np.full(len(xs), ANGLE)), w, h, dpi)
'''


def test_changed_plugin_code_is_never_mistaken_for_the_old_code(toy, tmp_path):
    # The same file, class name and version, different code (as when a bug is fixed without
    # a version bump): the templates are made again and the old run is not resumed.
    plugin = tmp_path / "plugin" / "grid.py"
    plugin.parent.mkdir()
    plugin.write_text(PLUGIN_SOURCE.format(angle=0.5))
    pairs = protocols.build("fvc", toy)

    def cfg(out: Path) -> RunConfig:
        return RunConfig(extractor=PluginSpec("extractor", "GridExtractor", f"{plugin}:GridExtractor"),
                         matcher=PluginSpec("matcher", "ToyMatcher", dummy("ToyMatcher")), out=out,
                         cache_dir=tmp_path / "cache", jobs=1, progress=False)

    run_benchmark(toy, pairs, cfg(tmp_path / "before"))
    before = json.loads((tmp_path / "before" / "manifest.json").read_text())["extractor"]
    plugin.write_text(PLUGIN_SOURCE.format(angle=1.5))
    with pytest.raises(RunDirError, match="another configuration"):
        run_benchmark(toy, pairs, cfg(tmp_path / "before"))
    run_benchmark(toy, pairs, cfg(tmp_path / "after"))
    after = json.loads((tmp_path / "after" / "manifest.json").read_text())["extractor"]
    assert before["version"] == after["version"] and before["code_sha256"] != after["code_sha256"]
    assert extractor_key(before) != extractor_key(after)
    extracted = pd.read_csv(tmp_path / "after" / "extractions.csv")
    assert (extracted["status"] == "ok").all()
    # the new templates were made by the new code: their cache folder holds its own entries
    assert len(list((tmp_path / "cache" / "templates" / extractor_key(after)).glob("*.npz"))) == len(extracted)
