"""The command line: listing, help, and clear errors for bad input."""

from __future__ import annotations

import json

import pytest

from bench.cli import main
from bench.cli import COMMANDS


def test_list_json_reports_availability(capsys):
    assert main(["list", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    extractors = {r["name"]: r for r in out["extractors"]}
    assert extractors["mindtct"]["available"] is True
    assert {r["name"] for r in out["matchers"]} >= {"bozorth3"}
    assert {"fvc2002-db2-b", "socofing-altered-easy", "nist-sd4", "nist-sd302", "folder"} <= {
        r["name"] for r in out["datasets"]}
    assert {r["name"] for r in out["protocols"]} >= {"fvc", "all-pairs"}
    for row in out["extractors"] + out["matchers"]:
        assert row["available"] or row["reason"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert f"fingerbench {command}" in text and "--quiet" in text


def test_typo_in_plugin_name_suggests(image_set, tmp_path, caplog):
    rc = main(["run", "-d", "folder", "--dataset-path", str(image_set), "--dataset-param", "dpi=500",
               "-e", "mindtc", "-m", "bozorth3", "-o", str(tmp_path)])
    assert rc == 2
    assert "did you mean 'mindtct'" in caplog.text


def test_unknown_dataset_and_missing_root(tmp_path, caplog, monkeypatch):
    monkeypatch.delenv("FINGERBENCH_DATA", raising=False)
    assert main(["run", "-d", "fvc2002-db1", "-e", "mindtct", "-m", "bozorth3", "-o", str(tmp_path)]) == 2
    assert "did you mean" in caplog.text
    caplog.clear()
    assert main(["run", "-d", "fvc2002-db1-b", "--dataset-path", str(tmp_path / "nowhere"),
                 "-e", "mindtct", "-m", "bozorth3", "-o", str(tmp_path)]) == 2
    assert "nowhere" in caplog.text


def test_metrics_on_a_folder_that_is_no_run(tmp_path, caplog):
    assert main(["metrics", str(tmp_path)]) == 2
    assert "manifest.json is missing" in caplog.text


# ----------------------------------------------------------------- plugin files and exit codes
PLUGIN_FILE = '''
class RidgeEndings:
    version = "0.1"

class Helper:
    pass
'''


@pytest.mark.parametrize("target, expected", [
    ("my_extractor.py", "name the class too, as my_extractor.py:RidgeEndings (it defines RidgeEndings, Helper)"),
    ("my_extractor.py:Nope", "my_extractor.py has no class Nope; it defines RidgeEndings, Helper"),
    ("missing.py:X", "missing.py: no such file"),
])
def test_plugin_file_without_or_with_a_wrong_class_lists_its_classes(target, expected, tmp_path, monkeypatch,
                                                                    caplog):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_extractor.py").write_text(PLUGIN_FILE)
    assert main(["run", "-e", target, "-m", "mcc", "-o", str(tmp_path / "runs")]) == 2
    assert expected in caplog.text
    assert not (tmp_path / "runs").exists()  # refused before any work


def test_check_names_the_class_form_too(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_extractor.py").write_text(PLUGIN_FILE)
    assert main(["check", "my_extractor.py"]) == 2
    assert "as my_extractor.py:RidgeEndings" in caplog.text


@pytest.mark.parametrize("argv", [
    ["run", "-d", "synthetic", "-d", "fvc2002-db1-b"],
    ["run", "-p", "fvc", "-p", "all-pairs"],
    ["interop", "-d", "synthetic", "-d", "fvc2002-db1-b"],
    ["identify", "-d", "synthetic", "-d", "fvc2002-db1-b", "-m", "mcc"],
])
def test_an_option_given_twice_is_refused_not_overridden(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "was given twice" in capsys.readouterr().err


def test_exit_codes_follow_one_convention(tmp_path, capsys):
    """0 done, 1 a run or gate failed, 2 usage or bad input: the same fault, the same code."""
    not_a_run = str(tmp_path)
    assert main(["metrics", not_a_run]) == 2
    assert main(["report", not_a_run, "-o", str(tmp_path / "r")]) == 2
    assert main(["compare", not_a_run, not_a_run]) == 2
    assert main(["compare", not_a_run, not_a_run, "--fail-if", "nonsense"]) == 2
    assert main([]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["report"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "Exit status" in capsys.readouterr().out


def test_json_into_a_closed_pipe_ends_quietly(tmp_path):
    """``fingerbench list --json | head``: no BrokenPipeError traceback (``head -n 0`` closes the
    pipe before the program has written anything, so the pipe is always closed when it writes)."""
    import subprocess
    import sys

    done = subprocess.run(["bash", "-c", f"set -o pipefail; {sys.executable} -m bench list --json | head -n 0"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr


def test_list_says_which_datasets_were_found_and_their_resolution(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("FINGERBENCH_DATA", raising=False)
    assert main(["list", "datasets", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["datasets"]}
    assert rows["fvc2002-db1-b"]["found"] is False and "no --data-root" in rows["fvc2002-db1-b"]["where"]
    assert rows["fvc2002-db2-b"]["dpi"] == 569 and rows["fvc2002-db2-b"]["image_size"] == [296, 560]

    (tmp_path / "fvc2002" / "DB1_B").mkdir(parents=True)
    (tmp_path / "fvc2002" / "DB1_B" / "101_1.tif").write_bytes(b"")
    assert main(["list", "datasets", "--json", "--data-root", str(tmp_path)]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["datasets"]}
    assert rows["fvc2002-db1-b"]["found"] is True
    assert rows["fvc2002-db1-b"]["path"] == str(tmp_path / "fvc2002" / "DB1_B")
    assert rows["fvc2002-db2-b"]["found"] is False
    assert rows["fvc2002-db2-b"]["where"] == "not found in <data root>/fvc2002/DB2_B"

    assert main(["list", "datasets", "--data-root", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    line = next(ln for ln in text.splitlines() if ln.split()[:1] == ["fvc2002-db1-b"])
    assert " found " in line and "500 dpi, 388 x 374 px" in line
    line = next(ln for ln in text.splitlines() if ln.split()[:1] == ["fvc2002-db2-b"])
    assert "not found" in line and "569 dpi" in line


# ----------------------------------------------------------------- one help style
def _subparsers():
    import argparse

    from bench.cli import build_parser

    parser, _ = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


@pytest.mark.parametrize("command", COMMANDS)
def test_one_help_style_for_every_command(command):
    from bench.cli.helpstyle import EXIT_STATUS

    p = _subparsers()[command]
    text = p.format_help()
    assert "Examples:\n  fingerbench " in text or "Examples:\n  # " in text
    assert EXIT_STATUS in text
    assert "(default: None)" not in text and "(default: False)" not in text and "(default: [])" not in text
    formatter = p._get_formatter()
    for action in p._actions:
        assert action.help, f"{command} {action.option_strings or action.dest} has no help text"
        shown = formatter._get_help_string(action)
        if "(default: %(default)s)" in shown:  # added: the help itself must not name a default too
            assert "default" not in action.help.lower(), f"{command} {action.option_strings}: default shown twice"
    # the description is wrapped to the terminal, not one long line
    assert max(len(line) for line in text.splitlines() if not line.startswith("  ")) <= 100


def test_other_libraries_info_messages_stay_out_of_the_terminal(tmp_path):
    """A report writes PDF figures, whose font subsetting logs hundreds of INFO lines from
    fontTools: the command shows its own messages only (others with -vv)."""
    import subprocess
    import sys

    from test_report import toy_dataset, toy_images, toy_run

    run = toy_run(toy_dataset(toy_images(tmp_path / "images")), tmp_path / "run", tmp_path / "cache")
    done = subprocess.run([sys.executable, "-m", "bench", "report", str(run), "-o", str(tmp_path / "report"),
                           "--bootstrap", "20"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "report" / "report.html").is_file()
    lines = done.stderr.splitlines()
    assert lines and all(line.startswith(("INFO bench.", "WARNING ", "ERROR ")) for line in lines), lines[:5]


def test_a_protocol_without_genuine_pairs_is_named_before_the_run(tmp_path, caplog):
    from conftest import dummy
    from test_report import toy_images

    images = toy_images(tmp_path / "all")
    one = tmp_path / "one"
    one.mkdir()
    for f in images.glob("*_1.png"):
        (one / f.name).write_bytes(f.read_bytes())
    assert main(["run", "-d", "folder", "--dataset-path", str(one), "--dataset-param", "dpi=500",
                 "-e", f"{dummy('ToyExtractor')}", "-m", f"{dummy('ToyMatcher')}", "-o", str(tmp_path / "runs"),
                 "-j", "1"]) == 0
    assert "protocol fvc on dataset folder has no genuine pair (one impression per finger?)" in caplog.text
