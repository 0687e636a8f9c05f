"""The folder a report is written to: replace only files that a FingerBench report wrote.

A report folder may be a run directory (the default for one run) or any folder the user
names with ``-o``. The files a report writes are listed in :data:`MARKER` in that folder;
a file that exists but is not listed there (the user's own, or one from elsewhere) is never
replaced, and the report is refused with its name instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from bench.store import RunDirError, write_json

#: The list of files that reports wrote into a folder.
MARKER = ".fingerbench-report.json"


class ReportOutputError(RunDirError):
    """A report would replace a file that no FingerBench report wrote."""


class ReportOutput:
    """Claims the files of one report in ``out``; :meth:`finish` records them in the marker."""

    def __init__(self, out: Path, names: Iterable[str]) -> None:
        self.out = Path(out)
        self.made = self._listed()
        self.written: set[str] = set()
        for name in names:  # the names known before anything is written
            self.path(name)

    def _listed(self) -> set[str]:
        marker = self.out / MARKER
        if not marker.exists():
            return set()
        try:
            files = json.loads(marker.read_text()).get("files", [])
        except (OSError, ValueError, AttributeError) as exc:
            raise ReportOutputError(f"{marker}: unreadable ({exc}); remove it to write a report here") from exc
        return {str(f) for f in files}

    def path(self, name: str) -> Path:
        """The path of ``name`` (relative to the folder), refused if it exists and is not the reports'."""
        target = self.out / name
        if (target.exists() or target.is_symlink()) and name not in self.made:
            raise ReportOutputError(
                f"{target}: exists and was not written by a FingerBench report, so it is not replaced; "
                f"choose another output folder (-o) or remove the file"
            )
        self.written.add(name)
        return target

    def finish(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        write_json(self.out / MARKER, {"tool": "fingerbench", "files": sorted(self.made | self.written)})
