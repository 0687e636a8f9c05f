"""The command line: listing, help, and clear errors for bad input."""

from __future__ import annotations

import json

import pytest

from bench.cli import main
from bench.commands import COMMANDS


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


def test_typo_in_plugin_name_suggests(shared_data, tmp_path, caplog):
    rc = main(["run", "-d", "fvc2002-db1-b", "--data-root", str(shared_data), "-e", "mindtc",
               "-m", "bozorth3", "-o", str(tmp_path)])
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
    assert main(["metrics", str(tmp_path)]) == 1
    assert "manifest.json is missing" in caplog.text
