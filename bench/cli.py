"""The ``fingerbench`` command line (also ``python -m bench``)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Sequence

log = logging.getLogger("fingerbench")

EPILOG = """\
Examples:
  fingerbench list
  fingerbench run --dataset fvc2002-db1-b --data-root ~/data -e mindtct -m bozorth3
  fingerbench run --dataset folder --dataset-path ./prints --dataset-param dpi=500 \\
                  -e ./my_extractor.py:MyExtractor -m bozorth3
  fingerbench metrics runs/fvc2002-db1-b/fvc/mindtct+bozorth3
  fingerbench report runs/fvc2002-db1-b/fvc/mindtct+bozorth3
"""


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fingerbench",
        description="Benchmark fingerprint minutiae extractors and matchers on public datasets "
                    "under the FVC protocols, with every score stored for recomputation.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from bench import __version__

    parser.add_argument("--version", action="version", version=f"fingerbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("list", help="list extractors, matchers, datasets and protocols",
                       description="List every registered extractor, matcher, dataset and protocol, "
                                   "with its availability and, when unavailable, the reason.")
    p.add_argument("what", nargs="?", choices=["extractors", "matchers", "datasets", "protocols"],
                   help="list only this kind")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _add_common(p)

    p = sub.add_parser(
        "run", help="run extractors and matchers on a dataset under a protocol",
        description="Extract a template from every image the protocol needs (cached per image, "
                    "extractor, version and parameters), compare every pair, store raw records and "
                    "metrics in a run directory. Interrupted runs resume where they stopped.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--dataset", "-d", required=True, help="dataset name (see 'fingerbench list datasets')")
    p.add_argument("--dataset-path", type=Path, help="the dataset's own folder")
    p.add_argument("--data-root", type=Path,
                   help="folder that holds datasets in their default sub-folders "
                        "(default: the FINGERBENCH_DATA environment variable)")
    p.add_argument("--dataset-param", action="append", metavar="KEY=VALUE", default=[],
                   help="dataset parameter (for 'folder': pattern=REGEX, dpi=500)")
    p.add_argument("--protocol", "-p", default="fvc",
                   help="protocol name, or a CSV pair file with columns probe,reference[,genuine]")
    p.add_argument("--protocol-param", action="append", metavar="KEY=VALUE", default=[],
                   help="protocol parameter")
    p.add_argument("--extractor", "-e", action="append", required=True,
                   help="extractor name, or module:Class, or path/file.py:Class (repeat for several)")
    p.add_argument("--matcher", "-m", action="append", required=True,
                   help="matcher name, or module:Class, or path/file.py:Class (repeat for several)")
    p.add_argument("--extractor-param", action="append", metavar="KEY=VALUE", default=[],
                   help="parameter passed to every extractor")
    p.add_argument("--matcher-param", action="append", metavar="KEY=VALUE", default=[],
                   help="parameter passed to every matcher")
    p.add_argument("--out", "-o", type=Path, default=Path("runs"),
                   help="results folder; each run goes to OUT/DATASET/PROTOCOL/EXTRACTOR+MATCHER")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="template cache (default: $FINGERBENCH_CACHE or ~/.cache/fingerbench)")
    p.add_argument("--jobs", "-j", type=int, default=0, help="worker processes (0 = all cores)")
    p.add_argument("--extract-timeout", type=float, default=60.0, help="seconds allowed per image")
    p.add_argument("--compare-timeout", type=float, default=10.0, help="seconds allowed per comparison")
    p.add_argument("--chunk-size", type=int, default=64, help="comparisons sent to a worker at once")
    p.add_argument("--force", action="store_true", help="recompute everything, ignoring stored results")
    p.add_argument("--retry-failed", action="store_true", help="recompute failed extractions and comparisons")
    p.add_argument("--report", action="store_true", help="write the report into each run directory")
    _add_common(p)

    p = sub.add_parser("metrics", help="recompute metrics from stored scores",
                       description="Recompute metrics.json of run directories from their stored "
                                   "extraction and score records, without running any plugin.")
    p.add_argument("runs", nargs="+", type=Path, help="run directories")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    _add_common(p)

    p = sub.add_parser("report", help="write a Markdown summary and a DET plot",
                       description="Write report.md and det.png for one run, or a side-by-side "
                                   "summary and overlaid DET curves for several runs.")
    p.add_argument("runs", nargs="+", type=Path, help="run directories")
    p.add_argument("--out", "-o", type=Path, default=None,
                   help="output folder (default: the run directory for one run, ./report for several)")
    _add_common(p)
    return parser


def _setup_logging(args: argparse.Namespace) -> None:
    level = logging.WARNING if getattr(args, "quiet", False) else (
        logging.DEBUG if getattr(args, "verbose", 0) > 1 else logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


# ----------------------------------------------------------------------- commands
def cmd_list(args: argparse.Namespace) -> int:
    from bench import datasets, protocols, registry

    out: dict[str, list[dict[str, Any]]] = {}
    for kind in ("extractor", "matcher"):
        rows = []
        for name in registry.names(kind):
            e = registry.entry(kind, name)
            ok, reason = e.availability()
            rows.append({"name": name, "available": ok, "reason": reason, "target": e.target,
                         "package": e.distribution})
        out[kind + "s"] = rows
    out["datasets"] = [
        {"name": name, "available": True, "reason": "", "title": info.title, "dpi": info.dpi,
         "protocols": list(info.protocols)}
        for name, info in sorted(datasets.available().items())
    ]
    out["protocols"] = [{"name": n, "available": True, "reason": "", "description": d}
                        for n, (_, d) in protocols.PROTOCOLS.items()]
    if args.what:
        out = {args.what: out[args.what]}
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    for section, rows in out.items():
        print(f"{section}:")
        for r in rows:
            if r["available"]:
                detail = r.get("title") or r.get("description") or r.get("target") or ""
                print(f"  {r['name']:<24} available    {detail}")
            else:
                print(f"  {r['name']:<24} unavailable  {r['reason']}")
        print()
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from bench import datasets, protocols, registry
    from bench.runner import PluginSpec, RunConfig, default_cache_dir, run_benchmark

    ds_params = registry.parse_params(args.dataset_param)
    dataset = datasets.open_dataset(args.dataset, root=args.dataset_path, data_root=args.data_root, **ds_params)
    for problem in dataset.problems:
        log.warning("dataset %s: %s", dataset.name, problem)
    pairs = protocols.build(args.protocol, dataset, **registry.parse_params(args.protocol_param))
    log.info("dataset %s: %d samples; protocol %s: %d genuine, %d impostor pairs",
             dataset.name, len(dataset.samples), pairs.protocol, pairs.n_genuine, pairs.n_impostor)
    ext_params = registry.parse_params(args.extractor_param)
    mat_params = registry.parse_params(args.matcher_param)
    extractors = [PluginSpec.resolve("extractor", e, ext_params) for e in args.extractor]
    matchers = [PluginSpec.resolve("matcher", m, mat_params) for m in args.matcher]
    cache = args.cache_dir or default_cache_dir()
    status = 0
    for ext in extractors:
        for mat in matchers:
            out = args.out / dataset.name / _safe(pairs.protocol) / f"{_safe(ext.name)}+{_safe(mat.name)}"
            cfg = RunConfig(ext, mat, out, cache, jobs=args.jobs, extract_timeout=args.extract_timeout,
                            compare_timeout=args.compare_timeout, chunk_size=args.chunk_size,
                            force=args.force, retry_failed=args.retry_failed)
            try:
                summary = run_benchmark(dataset, pairs, cfg)
            except registry.PluginError as exc:
                log.error("%s", exc)
                status = 1
                continue
            print(f"{out}: {format_summary(summary.metrics)}")
            if args.report:
                from bench.report import write_report

                write_report([out], out)
    return status


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _pct(x: Any) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


def format_summary(m: dict[str, Any]) -> str:
    acc = m["accuracy"]
    sp = m["speed"]
    op = acc["operating_points"]

    def point(key: str) -> str:
        v = op.get(key, {})
        return _pct(v.get("value")) if v.get("value") is not None else "unresolvable"

    ext_ms = sp["extraction_ms"].get("median")
    cps = sp.get("comparisons_per_second_per_core")
    return (
        f"EER {_pct(acc['eer'])} [{_pct(acc['eer_low'])}, {_pct(acc['eer_high'])}] "
        f"FMR100 {point('fmr100')} FMR1000 {point('fmr1000')} ZeroFMR {point('zero_fmr')} "
        f"(genuine {acc['n_genuine']}, impostor {acc['n_impostor']}, "
        f"REJ_ENROLL {m['enrolment']['rej_enroll']}); "
        f"extraction {'n/a' if ext_ms is None else f'{ext_ms:.1f} ms'} median, "
        f"{'n/a' if cps is None else f'{cps:,.0f}'} comparisons/s/core"
    )


def cmd_metrics(args: argparse.Namespace) -> int:
    from bench.evaluate import evaluate_run
    from bench.store import RunDirError

    status = 0
    for run in args.runs:
        try:
            m = evaluate_run(run)
        except RunDirError as exc:
            log.error("%s", exc)
            status = 1
            continue
        print(json.dumps(m, indent=2) if args.json else f"{run}: {format_summary(m)}")
    return status


def cmd_report(args: argparse.Namespace) -> int:
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    _setup_logging(args)
    from bench.datasets.base import DatasetError
    from bench.protocols import ProtocolError
    from bench.registry import PluginError
    from bench.store import RunDirError

    handlers = {"list": cmd_list, "run": cmd_run, "metrics": cmd_metrics, "report": cmd_report}
    try:
        return handlers[args.command](args)
    except (DatasetError, ProtocolError, PluginError, RunDirError) as exc:
        log.error("%s", exc)
        return 2
    except KeyboardInterrupt:
        log.error("interrupted; results computed so far are saved: run the same command again to resume")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
