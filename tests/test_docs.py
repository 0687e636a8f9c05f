"""The command blocks of README.md, datasets.md and docs/*.md are run, so that the
documentation cannot drift from the program.

Every ``sh`` block is a test. Its ``fingerbench`` commands run in order, in a fresh folder
(with the project's ``examples/`` beside them), and must exit 0. A command is left out, with
the reason, when it needs data the project cannot ship (an FVC folder, a data root, the
runs of such data, a cluster, a program or file of the reader's own) or runs for minutes;
a block whose every command is left out is skipped with those reasons. Complete Python
scripts (a block that starts with ``# name.py``) are run the same way.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
DOCUMENTS = [PROJECT / "README.md", PROJECT / "datasets.md", *sorted((PROJECT / "docs").glob("*.md"))]

#: Why a command cannot run here: (pattern, reason), the first match wins.
LEFT_OUT = [
    (r"--data-root|\.\./shared|~/|--dataset-path (?!sets/)|-d (fvc|nist|socofing|templates)\b",
     "needs a dataset the project cannot ship"),
    (r"runs-main|baseline/|runs/fvc", "needs the runs of such a dataset"),
    (r"bench/base|bench/new", "needs pytest-benchmark files measured on the reader's machine"),
    (r"--scheduler|/shared/", "needs a cluster"),
    (r"my_matcher\.py|my_xyt|/opt/", "needs a program or file of the reader's own"),
    (r"--gallery-size (\d{5,}|\d{1,3},\d{3})|--fingers \d{3,}|sets/hard|--dask-local", "runs for minutes"),
    (r"^fingerbench run$", "the main job runs every built-in family for about a minute "
                           "(tests/test_end_to_end.py runs it)"),
]


def _blocks(path: Path, languages: tuple[str, ...]) -> list[tuple[int, str]]:
    """(line number, text) of the fenced blocks of ``path`` in one of ``languages``."""
    found, lines = [], path.read_text().splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"\s*```(\w+)\s*$", lines[i])
        if m and m.group(1) in languages:
            start, body = i + 1, []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                body.append(lines[i])
                i += 1
            found.append((start, "\n".join(body)))
        i += 1
    return found


def _commands(block: str) -> list[str]:
    """The ``fingerbench`` commands of a shell block, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", block)
    out = []
    for line in joined.splitlines():
        for part in line.split("&&"):
            words = shlex.split(part, comments=True)
            if words and words[0] == "fingerbench":
                out.append(" ".join(words))
    return out


def _reason_left_out(command: str) -> str | None:
    for pattern, reason in LEFT_OUT:
        if re.search(pattern, command):
            return reason
    return None


SHELL_BLOCKS = [pytest.param(doc, line, text, id=f"{doc.relative_to(PROJECT)}:{line}")
                for doc in DOCUMENTS for line, text in _blocks(doc, ("sh", "bash")) if _commands(text)]
SCRIPTS = [pytest.param(doc, line, text, id=f"{doc.relative_to(PROJECT)}:{line}")
           for doc in DOCUMENTS for line, text in _blocks(doc, ("python",))
           if re.match(r"#\s*\w+\.py\s*$", text.splitlines()[0] if text else "")]


@pytest.fixture
def reader_folder(tmp_path: Path) -> Path:
    """A fresh folder, as a reader's, with the project's examples at hand."""
    (tmp_path / "examples").symlink_to(PROJECT / "examples")
    return tmp_path


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("doc, line, block", SHELL_BLOCKS)
def test_documented_commands_run(doc: Path, line: int, block: str, reader_folder: Path):
    left_out = []
    ran = 0
    for command in _commands(block):
        reason = _reason_left_out(command)
        if reason:
            left_out.append(f"'{command}': {reason}")
            continue
        done = _run([sys.executable, "-m", "bench", *shlex.split(command)[1:]], reader_folder)
        assert done.returncode == 0, f"{doc.name}, block at line {line}: '{command}' exited {done.returncode}\n" \
                                     f"{done.stderr[-3000:]}"
        if "--report" in command:
            assert re.search(r"^report: \S+report\.html$", done.stdout, re.M), done.stdout
        ran += 1
    if not ran:
        pytest.skip("; ".join(left_out))


@pytest.mark.parametrize("doc, line, script", SCRIPTS)
def test_documented_scripts_run(doc: Path, line: int, script: str, reader_folder: Path):
    name = script.splitlines()[0].lstrip("#").strip()
    (reader_folder / name).write_text(script + "\n")
    done = _run([sys.executable, name], reader_folder)
    assert done.returncode == 0, f"{doc.name}, script at line {line} exited {done.returncode}\n{done.stderr[-3000:]}"


def test_every_left_out_reason_is_still_used():
    """A rule that matches no documented command any more is dead weight: remove it."""
    commands = [c for p in SHELL_BLOCKS for c in _commands(p.values[2])]
    for pattern, reason in LEFT_OUT:
        assert any(re.search(pattern, c) for c in commands), reason


def test_every_figure_in_the_docs_is_made_by_the_figures_script():
    """Each image in docs/img is one of benchmarks/figures.py's, and every page that shows one
    says that the script made it."""
    from benchmarks import figures

    script = Path(figures.__file__).read_text()
    images = sorted(p.name for p in (PROJECT / "docs" / "img").iterdir())
    assert images, "docs/img is empty"
    for name in images:
        assert f"``{name}``" in script, f"{name} is not made by benchmarks/figures.py"
    for doc in DOCUMENTS:
        text = doc.read_text()
        for m in re.finditer(r"!\[[^\]]*\]\(((?:docs/)?img/[^)]+)\)", text):
            after = text[m.end():m.end() + 400]
            assert "benchmarks.figures" in after, f"{doc.name}: {m.group(1)} does not say which script made it"


def test_figures_script_redraws_a_docs_figure(tmp_path):
    import cv2

    from benchmarks import figures

    assert figures.main(["identification", "--out", str(tmp_path)]) == 0
    made = cv2.imread(str(tmp_path / "identification_scale.png"))
    shipped = cv2.imread(str(PROJECT / "docs" / "img" / "identification_scale.png"))
    assert made.shape == shipped.shape
