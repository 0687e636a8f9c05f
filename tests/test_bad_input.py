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
