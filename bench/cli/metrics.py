"""``fingerbench metrics``: recompute metrics from stored records."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from bench.cli.helpstyle import epilog
from bench.cli.summary import format_summary

log = logging.getLogger("fingerbench")


EXAMPLES = [
    "fingerbench metrics runs/synthetic/fvc/classic+mcc",
    "fingerbench metrics runs/identify/*/*",
    "fingerbench metrics --json runs/synthetic/fvc/* | head",
]


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("metrics", help="recompute metrics from stored scores",
                       description="Recompute metrics.json of run directories from their stored "
                                   "extraction and score records (identification runs: from their searches "
                                   "table), without running any plugin.",
                       epilog=epilog(EXAMPLES))
    p.add_argument("runs", nargs="+", type=Path, help="run directories")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    return p


def run(args: argparse.Namespace) -> int:
    from bench.metrics.summary import evaluate_run
    from bench.store import RunDirError

    status = 0
    for run in args.runs:
        try:
            m = evaluate_run(run)  # either kind of run, by its manifest
        except RunDirError as exc:
            log.error("%s", exc)
            status = 2  # not a readable run: bad input
            continue
        print(json.dumps(m, indent=2) if args.json else f"{run}: {format_summary(m)}")
    return status
