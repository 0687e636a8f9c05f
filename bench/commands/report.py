"""``fingerbench report``: a Markdown summary and DET plot of runs."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger("fingerbench")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("report", help="write a Markdown summary and a DET plot",
                       description="Write report.md and det.png for one run, or a side-by-side "
                                   "summary and overlaid DET curves for several runs.")
    p.add_argument("runs", nargs="+", type=Path, help="run directories")
    p.add_argument("--out", "-o", type=Path, default=None,
                   help="output folder (default: the run directory for one run, ./report for several)")
    return p


def run(args: argparse.Namespace) -> int:
    from bench.report import write_report
    from bench.store import RunDirError

    out = args.out or (args.runs[0] if len(args.runs) == 1 else Path("report"))
    try:
        path = write_report(args.runs, out)
    except RunDirError as exc:
        log.error("%s", exc)
        return 1
    print(path)
    return 0
