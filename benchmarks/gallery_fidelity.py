"""Identification accuracy against gallery size on image-based galleries, next to
minutiae-model galleries of the same shape: is the minutiae model faithful?

An **image-based gallery** is made of images from the synthetic fingerprint generator
(:mod:`bench.synthetic`, resumable and parallel: an interrupted generation completes
where it stopped), taken through an extractor (default ``classic``, templates cached as
by ``fingerbench run``). A **minutiae-model gallery** is made of templates drawn directly
from :mod:`bench.synthetic.model` (each model version given by ``--model``).

Both use the same protocol shape (that of ``bench.protocols.identification.synthetic``):
impression 1 of fingers 1..N enrolled; mated probes are impression 2 of ``mated`` fingers
drawn from the gallery (seeded); non-mated probes are impression 1 of the fingers
numbered after the gallery. So the image set holds N_max + non-mated fingers with two
impressions each. Matcher ``mcc`` (exhaustive search), candidate list of ``--candidates``.

Run::

    python -m benchmarks.gallery_fidelity --sizes 100 300 1000

It writes ``docs/data/gallery_fidelity.json`` and prints the table of
docs/identification.md. The image set goes to ``--images`` (default: the cache folder's
``fidelity-images/``) and the runs to ``--runs``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]  # the project

log = logging.getLogger("benchmarks.gallery_fidelity")


def image_protocol(n: int, mated: int, nonmated: int, seed: int) -> Any:
    """The protocol of ``bench.protocols.identification.synthetic`` on image sample ids
    (``<finger>_<impression>``)."""
    from bench.protocols import identification as proto

    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(n, size=mated, replace=False)) + 1
    gids = [f"{f}_1" for f in range(1, n + 1)]
    gsub = [str(f) for f in range(1, n + 1)]
    pids = [f"{int(f)}_2" for f in chosen] + [f"{f}_1" for f in range(n + 1, n + 1 + nonmated)]
    psub = [str(int(f)) for f in chosen] + [str(f) for f in range(n + 1, n + 1 + nonmated)]
    params = {"gallery_subjects": n, "probes": mated + nonmated, "mated": mated, "seed": seed, "images": True}
    return proto.IdentificationProtocol(f"images-g{n}-p{mated + nonmated}-s{seed}", gids, gsub, pids, psub, params)


def summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """Rank-1 identification rate and FNIR at FPIR = 1 % and 10 % (candidate list of one)."""
    at = metrics["fnir_at_fpir"]["rank1"]
    return {"rank1": metrics["rank_identification_rate"]["1"],
            "fnir_at_fpir_0.01": at["0.01"]["fnir"], "fnir_at_fpir_0.1": at["0.1"]["fnir"],
            "n_mated": metrics["n_mated"], "n_nonmated": metrics["n_nonmated"],
            "n_failed_comparisons": metrics["n_failed_comparisons"],
            "n_probe_enrol_failed": metrics["n_probe_enrol_failed"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000], help="gallery sizes (fingers)")
    ap.add_argument("--mated", type=int, default=100, help="mated probes per run")
    ap.add_argument("--nonmated", type=int, default=200, help="non-mated probes per run")
    ap.add_argument("--extractor", default="classic")
    ap.add_argument("--model", nargs="+", default=["1", "2"], help="minutiae model versions")
    ap.add_argument("--seed", type=int, default=0, help="image and template seed")
    ap.add_argument("--candidates", type=int, default=20)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--images", type=Path, default=None)
    ap.add_argument("--runs", type=Path, default=Path("runs/gallery-fidelity"))
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "data" / "gallery_fidelity.json")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)

    from bench import datasets
    from bench.engine.backends import LocalBackend
    from bench.identification import IdentificationConfig, run_identification
    from bench.protocols import identification as proto
    from bench.synthetic import model as syn
    from bench.identification.sources import TemplateSources
    from bench.plugins.loading import PluginSpec
    from bench.store.template_cache import default_cache_dir
    from bench.synthetic import generate_dataset

    cache = default_cache_dir()
    fingers = max(args.sizes) + args.nonmated
    images = args.images or cache / "fidelity-images" / f"f{fingers}-s{args.seed}"
    t0 = time.perf_counter()
    report = generate_dataset(images, fingers=fingers, impressions=2, seed=args.seed, jobs=args.jobs)
    t_gen = time.perf_counter() - t0
    log.info("image set: %d fingers x 2 in %s (%.0f s)", fingers, images, t_gen)
    ds = datasets.open_dataset("synthetic", root=images)
    matcher = PluginSpec.resolve("matcher", "mcc")
    backend = LocalBackend(args.jobs)

    rows: list[dict[str, Any]] = []
    for n in sorted(args.sizes):
        runs: list[tuple[str, Any, TemplateSources]] = [
            (f"images ({args.extractor})", image_protocol(n, args.mated, args.nonmated, args.seed),
             TemplateSources(dataset=ds, extractor=PluginSpec.resolve("extractor", args.extractor), cache_dir=cache,
                             jobs=args.jobs))]
        for version in args.model:
            runs.append((f"model version {version}",
                         proto.synthetic(n, args.mated + args.nonmated, args.mated / (args.mated + args.nonmated),
                                         seed=args.seed),
                         TemplateSources(model=syn.model_version(version), seed=args.seed, jobs=args.jobs)))
        for label, p, sources in runs:
            out = args.runs / f"g{n}" / label.replace(" ", "-").replace("(", "").replace(")", "")
            cfg = IdentificationConfig(matcher, out=out, sources=sources, candidates=args.candidates,
                                       jobs=args.jobs, progress=False)
            t1 = time.perf_counter()
            s = run_identification(p, cfg, backend)
            row = {"gallery": n, "templates": label, **summary(s.metrics), "seconds": round(time.perf_counter() - t1, 1)}
            log.info("%s", row)
            rows.append(row)
    result = {"protocol": {"mated": args.mated, "nonmated": args.nonmated, "candidates": args.candidates,
                           "matcher": "mcc", "extractor": args.extractor, "seed": args.seed},
              "image_set": {"fingers": fingers, "impressions": 2, "generation_seconds": round(t_gen, 1),
                            "generated_fingers": report.generated_fingers, "reused_fingers": report.reused_fingers},
              "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(table(rows))
    return 0


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f} %"


def table(rows: Sequence[dict[str, Any]]) -> str:
    lines = ["| gallery | templates | rank-1 | FNIR @ FPIR = 1 % | FNIR @ FPIR = 10 % |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['gallery']:,} | {r['templates']} | {_pct(r['rank1'])} | {_pct(r['fnir_at_fpir_0.01'])} "
                     f"| {_pct(r['fnir_at_fpir_0.1'])} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
