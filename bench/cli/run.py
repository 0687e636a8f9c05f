"""``fingerbench run``: run extractors and matchers on a dataset under a protocol."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from bench.cli.argtypes import Once
from bench.cli.execution import add_execution_args, backend_from_args
from bench.cli.helpstyle import epilog

from bench.cli.summary import format_summary

log = logging.getLogger("fingerbench")


EXAMPLES = [
    "# the main job: every built-in family on the embedded synthetic set, with a report",
    "fingerbench run",
    "# your extractor against the built-in MCC matcher, with a report",
    "fingerbench run -e examples/my_extractor.py:CrossingNumber -m mcc --report",
    "fingerbench run -d fvc2002-db1-b --data-root ~/data -e mindtct -m bozorth3 -p all-pairs",
    "fingerbench run -d folder --dataset-path ./prints --dataset-param dpi=500 -e classic -m mcc",
]


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "run", help="run extractors and matchers on a dataset under a protocol",
        description="Extract a template from every image the protocol needs (cached per image, "
                    "extractor, version, parameters and code), compare every pair, store raw records and "
                    "metrics in a run directory. Interrupted runs resume where they stopped.",
        epilog=epilog(EXAMPLES),
    )
    p.add_argument("--dataset", "-d", action=Once, default=None,
                   help="dataset name (see 'fingerbench list datasets'); default: the embedded synthetic "
                        "set (10 fingers x 8 impressions, generated into the cache on first use)")
    p.add_argument("--dataset-path", action=Once, type=Path, help="the dataset's own folder")
    p.add_argument("--data-root", action=Once, type=Path,
                   help="folder that holds datasets in their default sub-folders "
                        "(default: the FINGERBENCH_DATA environment variable)")
    p.add_argument("--dataset-param", action="append", metavar="KEY=VALUE", default=[],
                   help="dataset parameter (for 'folder': pattern=REGEX, dpi=500)")
    p.add_argument("--protocol", "-p", action=Once, default="fvc",
                   help="protocol name, or a CSV pair file with columns probe,reference[,genuine]")
    p.add_argument("--protocol-param", action="append", metavar="KEY=VALUE", default=[],
                   help="protocol parameter")
    p.add_argument("--extractor", "-e", action="append",
                   help="extractor name, or module:Class, or path/file.py:Class (repeat for several); "
                        "with no -e and no -m: every built-in family, each extractor with its own matcher")
    p.add_argument("--matcher", "-m", action="append",
                   help="matcher name, or module:Class, or path/file.py:Class (repeat for several)")
    p.add_argument("--extractor-param", action="append", metavar="KEY=VALUE", default=[],
                   help="parameter passed to every extractor")
    p.add_argument("--matcher-param", action="append", metavar="KEY=VALUE", default=[],
                   help="parameter passed to every matcher")
    p.add_argument("--quality", action=Once, default=None, metavar="NAME",
                   help="image quality plugin (name, module:Class or path/file.py:Class; built-in: nfiq2): "
                        "a quality score per image, stored in quality.csv, and quality bands and the "
                        "error-versus-reject characteristic in the metrics and report; default: none")
    p.add_argument("--quality-param", action="append", metavar="KEY=VALUE", default=[],
                   help="parameter passed to the quality plugin")
    p.add_argument("--quality-timeout", type=float, default=60.0, help="seconds allowed per image's quality")
    p.add_argument("--out", "-o", type=Path, default=Path("runs"),
                   help="results folder; each run goes to OUT/DATASET/PROTOCOL/EXTRACTOR+MATCHER")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="template cache (default: $FINGERBENCH_CACHE or ~/.cache/fingerbench)")
    p.add_argument("--extract-timeout", type=float, default=60.0, help="seconds allowed per image")
    p.add_argument("--compare-timeout", type=float, default=10.0, help="seconds allowed per comparison")
    p.add_argument("--init-timeout", type=float, default=120.0,
                   help="seconds allowed to construct a plugin (done in an isolated worker process)")
    p.add_argument("--chunk-size", type=int, default=64, help="comparisons sent to a worker at once")
    p.add_argument("--force", action="store_true", help="recompute everything, ignoring stored results")
    p.add_argument("--retry-failed", action="store_true",
                   help="recompute failed extractions and comparisons, and every comparison of a template "
                        "extracted again; without it, failures the extractor gives every time (fte, unreadable, "
                        "error) are reused from the template cache, while crashes, timeouts and MemoryErrors are "
                        "always retried")
    p.add_argument("--report", action="store_true",
                   help="write a report of all the runs of this command to OUT/report (always done "
                        "for the default job)")
    add_execution_args(p)
    return p


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


#: The default job's algorithm pairs: every built-in family, extractor with its own matcher.
DEFAULT_PAIRS = (("mindtct", "bozorth3"), ("classic", "mcc"))


def _plugin_pairs(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(extractor, matcher) names to run: the cartesian product of -e and -m, or the defaults."""
    from bench.plugins import registry

    if not args.extractor and not args.matcher:
        pairs = []
        for ext, mat in DEFAULT_PAIRS:
            reasons = [r for ok, r in (registry.entry("extractor", ext).availability(),
                                       registry.entry("matcher", mat).availability()) if not ok]
            if reasons:
                log.warning("skipping %s + %s: %s", ext, mat, "; ".join(reasons))
            else:
                pairs.append((ext, mat))
        return pairs
    if not args.extractor or not args.matcher:
        raise registry.PluginError("give both --extractor and --matcher, or neither (for the default pairs)")
    return [(e, m) for e in args.extractor for m in args.matcher]


def _open_dataset(args: argparse.Namespace, cache_dir: Path):
    from bench import datasets
    from bench.plugins import registry

    ds_params = registry.parse_params(args.dataset_param)
    name = args.dataset
    root = args.dataset_path
    if name is None:
        name = "synthetic"
    if name == "synthetic" and root is None and args.data_root is None:
        from bench.synthetic import ensure_dataset

        log.info("using the embedded synthetic set (generated into %s on first use)", cache_dir)
        root = ensure_dataset(cache_dir=cache_dir)
    return datasets.open_dataset(name, root=root, data_root=args.data_root, **ds_params)


def _first_failure(run_dir: Path) -> str:
    """The error of the first failed extraction of a run, from its extractions.csv."""
    import csv

    try:
        with open(run_dir / "extractions.csv", newline="") as f:
            for row in csv.DictReader(f):
                if row.get("status") != "ok":
                    return f"{row.get('status')}: {row.get('error')}"
    except OSError:
        pass
    return "unknown"


def run(args: argparse.Namespace) -> int:
    from bench import protocols
    from bench.plugins import registry
    from bench.engine.backends import BackendError
    from bench.plugins.loading import PluginSpec
    from bench.store.template_cache import default_cache_dir

    cache = args.cache_dir or default_cache_dir()
    default_job = args.dataset is None and not args.extractor and not args.matcher
    ext_params = registry.parse_params(args.extractor_param)
    mat_params = registry.parse_params(args.matcher_param)
    plugin_pairs = _plugin_pairs(args)
    if not plugin_pairs:
        raise registry.PluginError("no extractor and matcher to run")
    # every plugin is resolved before any work, so a misspelt one costs no time
    specs = {(kind, name): PluginSpec.resolve(kind, name, params)
             for kind, names, params in (("extractor", {e for e, _ in plugin_pairs}, ext_params),
                                         ("matcher", {m for _, m in plugin_pairs}, mat_params))
             for name in sorted(names)}
    if args.quality is not None:
        specs["quality", args.quality] = PluginSpec.resolve("quality", args.quality,
                                                             registry.parse_params(args.quality_param))
    elif args.quality_param:
        raise registry.PluginError("--quality-param without --quality")
    for spec in specs.values():
        registry.check_file_target(spec.kind, spec.target)
    dataset = _open_dataset(args, cache)
    for problem in dataset.problems:
        log.warning("dataset %s: %s", dataset.name, problem)
    pairs = protocols.build(args.protocol, dataset, **registry.parse_params(args.protocol_param))
    log.info("dataset %s: %d samples; protocol %s: %d genuine, %d impostor pairs",
             dataset.name, len(dataset.samples), pairs.protocol, pairs.n_genuine, pairs.n_impostor)
    if not pairs.n_genuine or not pairs.n_impostor:
        missing = "genuine" if not pairs.n_genuine else "impostor"
        log.warning("protocol %s on dataset %s has no %s pair (%s): no EER, DET or FNMR can be computed; "
                    "choose a protocol that pairs this dataset's impressions (fingerbench list protocols, "
                    "datasets.md)", pairs.protocol, dataset.name, missing,
                    "one impression per finger?" if missing == "genuine" else "one finger?")
    try:
        backend = backend_from_args(args)
    except BackendError as exc:
        log.error("%s", exc)
        return 2
    try:
        return _run_pairs(args, dataset, pairs, plugin_pairs, specs, cache, default_job, backend)
    finally:
        backend.close()


def _run_pairs(args, dataset, pairs, plugin_pairs, specs, cache, default_job, backend) -> int:
    from bench.plugins import registry
    from bench.engine.backends import BackendError
    from bench.runner import RunConfig, run_benchmark
    from bench.synthetic.dataset import run_folder_name

    status = 0
    done = []
    for ext_name, mat_name in plugin_pairs:
        ext, mat = specs["extractor", ext_name], specs["matcher", mat_name]
        out = args.out / run_folder_name(dataset) / _safe(pairs.protocol) / f"{_safe(ext.name)}+{_safe(mat.name)}"
        cfg = RunConfig(ext, mat, out, cache, jobs=args.jobs, extract_timeout=args.extract_timeout,
                        compare_timeout=args.compare_timeout, chunk_size=args.chunk_size,
                        init_timeout=args.init_timeout,
                        force=args.force, retry_failed=args.retry_failed,
                        quality=specs.get(("quality", args.quality)), quality_timeout=args.quality_timeout)
        try:
            summary = run_benchmark(dataset, pairs, cfg, backend)
        except (registry.PluginError, BackendError) as exc:
            log.error("%s", exc)
            status = 1
            continue
        enrolment = summary.metrics.get("enrolment", {})
        if enrolment.get("n_images") and not enrolment.get("n_enrolled"):
            log.error("%s: no result: every one of the %d enrolments failed, so there is no score to measure "
                      "(first failure: %s)", out, enrolment["n_images"], _first_failure(summary.run_dir))
            status = 1
            continue
        done.append(out)
        print(f"{out}: {format_summary(summary.metrics)}")
    if done and (args.report or default_job):
        from bench.report import write_report

        path = write_report(done, args.out / "report")
        print(f"report: {path}")
    return status
