"""``fingerbench report``: an HTML report (plus Markdown, CSV and JSON) of one or more runs."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from bench.cli.helpstyle import epilog
from bench.cli.argtypes import non_negative

log = logging.getLogger("fingerbench")


EXAMPLES = [
    "fingerbench report runs/synthetic/fvc/classic+mcc",
    "fingerbench report runs/fvc2002-db1-b/*/* -o report",
    "fingerbench report runs/identify/*/* -o report-1n --bootstrap 0",
]


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "report", help="write an HTML report (and Markdown, CSV, JSON) of runs",
        description="Write report.html (self-contained, works offline), report.md, summary.json, "
                    "indicators.csv and speed.csv for one run, or for several runs side by side "
                    "(algorithms x datasets). Runs on different datasets or protocols get separate "
                    "sections; their curves are never overlaid. Identification runs (fingerbench "
                    "identify) get an identification report: CMC and identification DET curves, "
                    "cmc.csv and det.csv.",
        epilog=epilog(EXAMPLES),
    )
    p.add_argument("runs", nargs="+", type=Path, help="run directories")
    p.add_argument("--out", "-o", type=Path, default=None,
                   help="output folder (default: the run directory for one run, ./report for several)")
    p.add_argument("--bootstrap", type=non_negative, default=1000, metavar="N",
                   help="subject-bootstrap replicates for the confidence intervals (0: no intervals)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    p.add_argument("--worst", type=non_negative, default=3, metavar="K",
                   help="worst errors shown per run and kind (0: none)")
    return p


def is_identification(run: Path) -> bool:
    """Whether ``run`` holds an identification (1:N) run, by its manifest's kind."""
    import json

    from bench.store import IDENTIFICATION

    try:
        return json.loads((Path(run) / "manifest.json").read_text()).get("kind") == IDENTIFICATION
    except (OSError, ValueError):
        return False  # the verification report names what is wrong with the folder


def run(args: argparse.Namespace) -> int:
    from bench.identification.report import write_identification_report
    from bench.report import write_report
    from bench.store import RunDirError

    out = args.out or (args.runs[0] if len(args.runs) == 1 else Path("report"))
    kinds = {is_identification(r) for r in args.runs}
    try:
        if kinds == {True}:
            path = write_identification_report(args.runs, out)
        elif len(kinds) > 1:
            ids = [str(r) for r in args.runs if is_identification(r)]
            raise RunDirError(f"identification (1:N) runs ({', '.join(ids)}) and verification (1:1) runs cannot "
                              f"share a report: report them separately")
        else:
            path = write_report(args.runs, out, n_replicates=args.bootstrap, seed=args.seed,
                                worst_k=args.worst)
    except RunDirError as exc:
        log.error("%s", exc)
        return 2  # not a readable run: bad input
    print(path)
    return 0
