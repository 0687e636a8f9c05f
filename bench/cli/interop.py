"""``fingerbench interop``: every extractor against every matcher (a MINEX-style matrix)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from bench.cli.helpstyle import epilog
from bench.cli.argtypes import Once

log = logging.getLogger("fingerbench")


EXAMPLES = [
    "fingerbench interop -d synthetic -e mindtct -e classic -m bozorth3 -m mcc",
    "fingerbench interop -d fvc2002-db1-b --data-root ~/data -p fvc --fmr 0.05",
]

NOTES = """\
Plugins left out of the default selection (a missing package, parameters needed) are named
in warnings; a plugin named with -e/-m that cannot run here fails its cells (exit status 1).
Below the table, each cell marked '-' has its reason."""


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "interop", help="interoperability matrix: every extractor against every matcher",
        description="Run every available extractor against every matcher that accepts standard minutiae "
                    "(and each extractor against the matcher of its own family), on one dataset, and "
                    "write a MINEX-style table: EER and FNMR at a fixed FMR per cell, minutiae count and "
                    "template size per extractor. Each cell is an ordinary run directory "
                    "(OUT/DATASET/PROTOCOL/EXTRACTOR+MATCHER); templates are cached, so each extractor runs "
                    "once. The table is printed and written to OUT/DATASET/interop-PROTOCOL.md and .json.",
        epilog=epilog(EXAMPLES, NOTES),
    )
    p.add_argument("--dataset", "-d", action=Once, required=True, help="dataset name")
    p.add_argument("--dataset-path", action=Once, type=Path, help="the dataset's own folder")
    p.add_argument("--data-root", action=Once, type=Path, help="folder holding datasets in their default sub-folders")
    p.add_argument("--dataset-param", action="append", metavar="KEY=VALUE", default=[], help="dataset parameter")
    p.add_argument("--protocol", "-p", action=Once, default="all-pairs",
                   help="protocol (all-pairs resolves FMR 1%% on a B set; fvc has only 45 impostor pairs there)")
    p.add_argument("--extractor", "-e", action="append", default=None,
                   help="extractor name or module:Class (repeat); default: every available one")
    p.add_argument("--matcher", "-m", action="append", default=None,
                   help="matcher name or module:Class (repeat); default: every available one")
    p.add_argument("--fmr", type=float, default=0.01, help="FMR at which the FNMR is reported")
    p.add_argument("--out", "-o", type=Path, default=Path("runs"), help="results folder")
    p.add_argument("--cache-dir", type=Path, default=None, help="template cache")
    p.add_argument("--jobs", "-j", type=int, default=0, help="worker processes (0 = all cores)")
    p.add_argument("--extract-timeout", type=float, default=60.0, help="seconds allowed per image")
    p.add_argument("--compare-timeout", type=float, default=10.0, help="seconds allowed per comparison")
    p.add_argument("--force", action="store_true", help="recompute every cell")
    return p


def run(args: argparse.Namespace) -> int:
    from bench import datasets, protocols
    from bench.plugins import registry
    from bench.interop import available_specs, run_interop
    from bench.plugins.loading import PluginSpec
    from bench.store.template_cache import default_cache_dir

    dataset = datasets.open_dataset(args.dataset, root=args.dataset_path, data_root=args.data_root,
                                    **registry.parse_params(args.dataset_param))
    pairs = protocols.build(args.protocol, dataset)
    if not 0 < args.fmr < 1:
        log.error("--fmr must be between 0 and 1, got %s", args.fmr)
        return 2
    specs = {}
    unresolved = False
    for kind, given in (("extractor", args.extractor), ("matcher", args.matcher)):
        if given:
            chosen = []
            for name in given:
                try:
                    chosen.append(PluginSpec.resolve(kind, name))
                except registry.PluginError as exc:
                    log.error("%s", exc)
                    unresolved = True
            specs[kind] = chosen
        else:
            chosen, skipped = available_specs(kind)
            for name, reason in skipped:
                log.warning("%s '%s' left out: %s", kind, name, reason)
            specs[kind] = chosen
    if unresolved:
        return 2
    if not specs["extractor"] or not specs["matcher"]:
        log.error("no extractor or no matcher can run here")
        return 1
    result = run_interop(dataset, pairs, specs["extractor"], specs["matcher"], args.out,
                         args.cache_dir or default_cache_dir(), fmr=args.fmr, jobs=args.jobs,
                         extract_timeout=args.extract_timeout, compare_timeout=args.compare_timeout,
                         force=args.force)
    print(result.to_markdown())
    print(f"Matrix written to {result.markdown_path} and {result.json_path}; each cell's run directory is "
          f"{result.cells_dir}/EXTRACTOR+MATCHER.")
    return 1 if any(c.error for c in result.cells) else 0
