"""``fingerbench compare``: metric deltas between a baseline and a new result, and CI gates."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from bench.cli.helpstyle import epilog

log = logging.getLogger("fingerbench")

GATES = """\
Gates (--fail-if METRIC:CHANGE, repeatable or comma-separated):
  eer:+0.5pp              fail if the EER rises by more than 0.5 percentage points
  fmr1000:+1pp            the same for FMR1000 (skipped where both runs cannot resolve it)
  comparisons_per_s:-10%  fail if comparisons/s fall by more than 10 % (and not within noise)
  extraction_ms:+20%      fail if the median extraction time rises by more than 20 %
  scores:changed          fail unless both runs have the same pairs and the same scores
  time:+10%               pytest-benchmark files: fail if a benchmark's median time per round
                          rises by more than 10 % (and not within noise)
  A '+' fails on increases, '-' on decreases, no sign on both. pp = percentage points
  (rates only); % = relative to the base value.
Metrics: eer, fmr100, fmr1000, fmr10000, zero_fmr, zero_fnmr, rej_enroll, rej_match,
  eer_star, extraction_ms, extraction_ms_p95, comparison_us, comparisons_per_s, template_bytes;
  time for pytest-benchmark files (--benchmark-json with --benchmark-save-data; a folder of
  such files is one side, its passes pooled: measure BASE and NEW alternately in one job).
"""

EXAMPLES = [
    "fingerbench compare runs-main/ runs/",
    "fingerbench compare runs-main/ runs/ --fail-if eer:+0.5pp --fail-if comparisons_per_s:-10%",
    "fingerbench compare report-main/summary.json report/summary.json --json",
    "fingerbench compare bench/base bench/new --fail-if time:+10%",
]


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "compare", help="compare a baseline with a new result; gate CI on the deltas",
        description="Compare BASE with NEW: per-metric deltas (accuracy and speed), whether the "
                    "scores are identical, and whether speed changes are within noise. Each side is a "
                    "run directory, a folder of run directories, or a report's summary.json; or both "
                    "sides are pytest-benchmark JSON files (or folders of them).",
        epilog=epilog(EXAMPLES, notes=GATES),
    )
    p.add_argument("base", type=Path, help="baseline: run directory, folder of runs, summary.json, "
                                           "or pytest-benchmark JSON file(s)")
    p.add_argument("new", type=Path, help="new result: run directory, folder of runs, summary.json, "
                                          "or pytest-benchmark JSON file(s)")
    p.add_argument("--fail-if", action="append", default=[], metavar="METRIC:CHANGE",
                   help="exit with status 1 when this change happens (see below)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--alpha", type=float, default=0.01,
                   help="significance level of the Mann-Whitney U test on per-item timings")
    p.add_argument("--min-effect", type=float, default=0.05, metavar="FRACTION",
                   help="relative speed changes below this are within noise, e.g. 0.05 = 5 %%")
    return p


def run(args: argparse.Namespace) -> int:
    from bench.compare import GateError, compare, format_text, parse_gates
    from bench.store import RunDirError

    if not 0 < args.alpha < 1:
        log.error("--alpha must be between 0 and 1, got %s", args.alpha)
        return 2
    if args.min_effect < 0:
        log.error("--min-effect must be 0 or more, got %s", args.min_effect)
        return 2
    try:
        gates = parse_gates(args.fail_if)
    except GateError as exc:
        log.error("%s", exc)
        return 2
    for g in gates:
        from bench.compare import METRICS

        m = METRICS.get(g.metric)
        if m is not None and g.direction and (g.direction > 0) == (m.better == "higher"):
            log.warning("--fail-if %s fails when %s improves; is the sign what you meant?", g.spec, g.metric)
    try:
        result = compare(args.base, args.new, gates, alpha=args.alpha, min_effect=args.min_effect)
    except RunDirError as exc:
        log.error("%s", exc)
        return 2
    print(json.dumps(result, indent=2) if args.json else format_text(result))
    return 0 if result["passed"] else 1
