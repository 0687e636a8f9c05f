"""``fingerbench identify``: 1:N identification (searches of probes against a gallery)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from bench.cli.argtypes import Once, positive
from bench.cli.execution import add_execution_args, backend_from_args
from bench.cli.helpstyle import epilog

log = logging.getLogger("fingerbench")

EXAMPLES = [
    "# FVC style: impression 1 enrolled, the others searched; 2/3 of the fingers left out of the",
    "# gallery, so that about 1/3 of the searches are mated (FpVTE)",
    "fingerbench identify -d fvc2002-db1-b --data-root ../shared/datasets -e mindtct -m mcc --mated-fraction 1/3",
    "# the same gallery padded with 10,000 synthetic non-mated subjects",
    "fingerbench identify -d fvc2002-db1-b --data-root ../shared/datasets -e mindtct -m mcc --distractors 10000",
    "# synthetic templates only: 100,000 enrolled subjects, 300 probes (100 mated)",
    "fingerbench identify --gallery-size 100000 --probes 300 -m mcc",
    "# a cascade: MCC-based LSH passes 5 % of the gallery on to MCC",
    "fingerbench identify --gallery-size 100000 --probes 300 -m mcc --index mcc-lsh --penetration 0.05",
    "# on a Dask cluster (the run directory must be on a file system the workers share)",
    "fingerbench identify --gallery-size 1000000 --probes 300 -m mcc --scheduler tcp://10.0.0.5:8786",
    "# export the protocol, edit it, run it",
    "fingerbench identify --gallery-size 1000 --probes 30 --export-protocol p.csv",
    "fingerbench identify --protocol p.csv -m mcc",
    "# recompute metrics.json from the stored tables (the same command as for 1:1 runs)",
    "fingerbench metrics runs/identify/synthetic-g1000x1-p30-m0.33-s0/mcc",
]


def _fraction(text: str) -> float:
    try:
        num, _, den = text.partition("/")
        value = float(num) / float(den) if den else float(num)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"'{text}' is not a number (e.g. 0.33 or 1/3)") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "identify", help="1:N identification: search probes against a gallery",
        description="Search every probe against the gallery and keep the top candidates; report CMC, "
                    "FNIR at FPIR, penetration rate, speed and memory. Templates come from a dataset and "
                    "an extractor (cached as by 'run'), or from the synthetic minutiae model for galleries of "
                    "any size. Interrupted runs resume where they stopped.",
        epilog=epilog(EXAMPLES),
    )
    src = p.add_argument_group("templates")
    src.add_argument("--dataset", "-d", action=Once, help="dataset name (see 'fingerbench list datasets')")
    src.add_argument("--dataset-path", action=Once, type=Path, help="the dataset's own folder")
    src.add_argument("--data-root", action=Once, type=Path, help="folder holding datasets in their default sub-folders")
    src.add_argument("--dataset-param", action="append", metavar="KEY=VALUE", default=[], help="dataset parameter")
    src.add_argument("--extractor", "-e", help="extractor for dataset images (name, module:Class or file.py:Class)")
    src.add_argument("--extractor-param", action="append", metavar="KEY=VALUE", default=[],
                     help="parameter passed to the extractor (repeat for several)")
    src.add_argument("--synthetic-seed", type=int, default=0, help="seed of the synthetic templates")
    src.add_argument("--synthetic-param", action="append", metavar="KEY=VALUE", default=[],
                     help="parameter of the synthetic minutiae model (see bench.synthetic.model)")
    src.add_argument("--cache-dir", type=Path, default=None,
                     help="template cache (default: $FINGERBENCH_CACHE or ~/.cache/fingerbench)")
    pro = p.add_argument_group("protocol")
    pro.add_argument("--protocol", "-p", action=Once, default=None,
                     help="'dataset' (default with -d), 'synthetic' (default otherwise), or a protocol CSV file "
                          "(role,id,subject[,mated])")
    pro.add_argument("--gallery-size", type=positive, default=1000, help="synthetic: enrolled subjects")
    pro.add_argument("--gallery-impressions", type=positive, default=1, help="synthetic: templates per subject")
    pro.add_argument("--probes", type=positive, default=300, help="synthetic: number of probes")
    pro.add_argument("--mated-fraction", type=_fraction, default=None,
                     help="share F of the probes that are mated, e.g. 1/3 or 0.33. Synthetic: default 1/3 as in "
                          "FpVTE. Dataset: default 1 (every finger enrolled); otherwise round((1 - F) x fingers) "
                          "fingers are left out of the gallery, so their probes are non-mated (F = 0.33 on 10 "
                          "fingers: 7 left out, 3 enrolled)")
    pro.add_argument("--enrol-impressions", default="1", help="dataset: impressions enrolled, e.g. 1 or 1,2")
    pro.add_argument("--distractors", type=int, default=0, help="dataset: synthetic non-mated subjects added to the gallery")
    pro.add_argument("--protocol-seed", type=int, default=0, help="seed of the protocol's random choices")
    pro.add_argument("--allow-probe-in-gallery", action="store_true",
                     help="let a probe also be (or be identical to) a gallery template")
    pro.add_argument("--export-protocol", type=Path, metavar="FILE", help="write the protocol as CSV and stop")
    mat = p.add_argument_group("matcher and search")
    mat.add_argument("--matcher", "-m", help="matcher name, module:Class or file.py:Class")
    mat.add_argument("--matcher-param", action="append", metavar="KEY=VALUE", default=[],
                     help="parameter passed to the matcher (repeat for several)")
    mat.add_argument("--index", help="an index in front of the matcher (a cascade): name, module:Class or "
                                      "file.py:Class (see 'fingerbench list')")
    mat.add_argument("--index-param", action="append", metavar="KEY=VALUE", default=[],
                     help="parameter passed to the index (repeat for several)")
    mat.add_argument("--penetration", type=_fraction, default=None,
                     help="with --index: the share of each gallery shard the index may pass on (default 1)")
    mat.add_argument("--index-timeout", type=float, default=60.0, help="seconds one index search may take")
    mat.add_argument("--candidates", "-L", type=positive, default=100, help="candidate list length L")
    mat.add_argument("--shard-size", type=positive, default=1000,
                     help="gallery templates per unit of work (memory per worker grows with it)")
    mat.add_argument("--probe-batch", type=positive, default=1024, help="probes per unit of work")
    add_execution_args(p, task_timeout=True)
    out = p.add_argument_group("output")
    out.add_argument("--out", "-o", type=Path, default=None,
                     help="run directory (default: runs/identify/PROTOCOL/[EXTRACTOR+]MATCHER)")
    out.add_argument("--force", action="store_true", help="recompute everything, ignoring stored results")
    out.add_argument("--json", action="store_true", help="print metrics and timing as JSON")
    return p


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def run(args: argparse.Namespace) -> int:
    from bench import datasets
    from bench.plugins import registry
    from bench.protocols import identification as proto
    from bench.synthetic import model as syn
    from bench.engine.backends import BackendError
    from bench.cli.summary import format_summary
    from bench.identification.runner import IdentificationConfig, run_identification
    from bench.identification.sources import TemplateSources
    from bench.plugins.loading import PluginSpec
    from bench.store.template_cache import default_cache_dir

    dataset = None
    if args.dataset:
        dataset = datasets.open_dataset(args.dataset, root=args.dataset_path, data_root=args.data_root,
                                        **registry.parse_params(args.dataset_param))
        for problem in dataset.problems:
            log.warning("dataset %s: %s", dataset.name, problem)
    kind = args.protocol or ("dataset" if dataset is not None else "synthetic")
    if kind == "dataset":
        if dataset is None:
            log.error("--protocol dataset needs --dataset")
            return 2
        enrol = [int(x) for x in str(args.enrol_impressions).split(",") if x.strip()]
        protocol = proto.from_dataset(dataset, enrol, args.mated_fraction, args.protocol_seed, args.distractors,
                                      args.allow_probe_in_gallery)
    elif kind == "synthetic":
        mf = proto.FPVTE_MATED_FRACTION if args.mated_fraction is None else args.mated_fraction
        protocol = proto.synthetic(args.gallery_size, args.probes, mf, args.gallery_impressions, args.protocol_seed)
        protocol.allow_probe_in_gallery = args.allow_probe_in_gallery
    else:
        protocol = proto.from_csv(Path(kind), args.allow_probe_in_gallery)
    log.info("protocol %s: %d gallery templates (%d subjects), %d probes (%d mated)", protocol.name,
             protocol.n_gallery, len(protocol.subjects), protocol.n_probes, protocol.n_mated)
    if args.export_protocol:
        protocol.to_csv(args.export_protocol)
        print(args.export_protocol)
        return 0
    if not args.matcher:
        log.error("a matcher is needed (-m NAME)")
        return 2
    matcher = PluginSpec.resolve("matcher", args.matcher, registry.parse_params(args.matcher_param))
    extractor = None
    if args.extractor:
        extractor = PluginSpec.resolve("extractor", args.extractor, registry.parse_params(args.extractor_param))
    model = syn.MinutiaeModel.from_dict(registry.parse_params(args.synthetic_param)) if args.synthetic_param \
        else syn.MinutiaeModel()
    sources = TemplateSources(dataset=dataset, extractor=extractor, cache_dir=args.cache_dir or default_cache_dir(),
                              model=model, seed=args.synthetic_seed, jobs=args.jobs)
    out = args.out or Path("runs") / "identify" / _safe(protocol.name) / (
        f"{_safe(extractor.name)}+{_safe(matcher.name)}" if extractor else _safe(matcher.name))
    index = None
    if args.index:
        from bench.identification.cascade import IndexSettings

        penetration = 1.0 if args.penetration is None else args.penetration
        if penetration <= 0:
            log.error("--penetration must be above 0")
            return 2
        index = IndexSettings(PluginSpec.resolve("index", args.index, registry.parse_params(args.index_param)),
                              penetration, args.index_timeout)
        out = out.with_name(f"{out.name}+{_safe(index.spec.name)}@{penetration:g}") if not args.out else out
    elif args.penetration is not None:
        log.error("--penetration needs --index")
        return 2
    config = IdentificationConfig(matcher, out, sources, candidates=args.candidates, shard_size=args.shard_size,
                                  probe_batch=args.probe_batch, jobs=args.jobs, force=args.force, index=index)
    try:
        backend = backend_from_args(args)
        try:
            summary = run_identification(protocol, config, backend)
        finally:
            backend.close()
    except BackendError as exc:
        log.error("%s", exc)
        return 2
    if args.json:
        print(json.dumps({"run_dir": str(summary.run_dir), "metrics": summary.metrics, "timing": summary.timing},
                         indent=2, default=str))
    else:
        print(f"{summary.run_dir}: {format_summary(summary.metrics, summary.timing)}")
    return 0
