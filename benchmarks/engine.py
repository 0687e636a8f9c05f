"""What the run engine costs, measured side by side in one run (issue targets of the engine).

1. MCC in a 1:1 all-pairs run on a B set against its 1:N rate per core: the 1:1 rate is
   the run's comparisons divided by their stored matcher seconds (one local worker); the
   1:N rate is one prepared probe against the gallery of every B set's templates (the same
   extractor), in this process, as a 1:N search unit does it.
2. The fixed cost of a run: a matcher that does nothing, on a B set whose templates are
   cached: wall time of ``run_benchmark`` in this process, and of the ``fingerbench run``
   command (interpreter start and imports included).
3. The same 1:1 run on the local pool and on a local Dask cluster, with 1 and 2 workers:
   identical score tables (timing column aside) and the parallel efficiency of each
   (comparison wall time with 1 worker / (2 x with 2 workers)).

Run::

    python -m benchmarks.engine --data-root ../shared/datasets --out docs/data/engine.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SETS = ("fvc2000-db1-b", "fvc2000-db2-b", "fvc2000-db3-b", "fvc2000-db4-b",
        "fvc2002-db1-b", "fvc2002-db2-b", "fvc2002-db3-b", "fvc2002-db4-b")

NOOP = '''
class Noop:
    version = "1"
    higher_is_better = True
    accepted_formats = ("minutiae",)

    def compare(self, probe, reference):
        return 0.0
'''


def _run(ds, pairs, extractor, matcher, out, cache, backend=None, jobs=1):
    from bench.plugins.loading import PluginSpec
    from bench.runner import RunConfig, run_benchmark

    cfg = RunConfig(PluginSpec.resolve("extractor", extractor), PluginSpec.resolve("matcher", matcher), out, cache,
                    jobs=jobs, progress=False)
    return run_benchmark(ds, pairs, cfg, backend)


def _scores(run_dir: Path):
    import pandas as pd

    return pd.read_csv(run_dir / "scores.csv", dtype=str, keep_default_na=False).drop(columns=["seconds"])


def mcc_rates(data_root: str, work: Path, cache: Path, dataset: str, repeats: int) -> dict:
    import numpy as np
    import pandas as pd

    from bench import datasets, protocols
    from bench.template import Template
    from bench.store.template_cache import cached_template_path
    from extractors.mcc.matcher import MccMatcher

    gallery: list[Template] = []
    probes: list[Template] = []
    for name in SETS:
        ds = datasets.open_dataset(name, data_root=data_root)
        s = _run(ds, protocols.all_pairs(ds), "classic", "mcc", work / "mcc" / name, cache)
        manifest = json.loads((s.run_dir / "manifest.json").read_text())
        for sample in ds.samples:
            path = cached_template_path(manifest, sample.id)
            if path is not None:
                t = Template.from_npz_bytes(path.read_bytes())
                gallery.append(t)
                if name == dataset:
                    probes.append(t)
    one_to_one = []
    for _ in range(repeats):
        ds = datasets.open_dataset(dataset, data_root=data_root)
        s = _run(ds, protocols.all_pairs(ds), "classic", "mcc", work / "mcc-again", cache)
        sc = pd.read_csv(s.run_dir / "scores.csv")
        ok = sc["status"] == "ok"
        one_to_one.append(float(ok.sum() / sc.loc[ok, "seconds"].sum()))
        (work / "mcc-again" / "scores.csv").unlink()  # recompute every comparison next time
    m = MccMatcher()
    m.warm_up()
    for t in gallery:
        m.prepare(t)
    one_to_n = []
    for _ in range(repeats):
        total = 0.0
        for p in probes:
            t0 = time.perf_counter()
            m.compare_many(p, gallery)
            total += time.perf_counter() - t0
        one_to_n.append(len(probes) * len(gallery) / total)
    r11, r1n = float(np.median(one_to_one)), float(np.median(one_to_n))
    return {"dataset": dataset, "gallery_templates": len(gallery), "probes": len(probes),
            "one_to_one_per_s": r11, "one_to_n_per_s": r1n, "ratio_1n_over_1to1": r1n / r11,
            "one_to_one_samples": one_to_one, "one_to_n_samples": one_to_n}


def fixed_cost(data_root: str, work: Path, cache: Path, dataset: str, repeats: int) -> dict:
    import numpy as np

    from bench import datasets, protocols

    plugin = work / "noop.py"
    plugin.write_text(NOOP)
    ds = datasets.open_dataset(dataset, data_root=data_root)
    pairs = protocols.all_pairs(ds)
    _run(ds, pairs, "classic", f"{plugin}:Noop", work / "noop-warm", cache)  # templates cached
    inproc, command = [], []
    env = {**os.environ, "FINGERBENCH_CACHE": str(cache)}
    for i in range(repeats):
        t0 = time.perf_counter()
        _run(ds, pairs, "classic", f"{plugin}:Noop", work / f"noop-{i}", cache, jobs=2)
        inproc.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "bench", "run", "-q", "-d", dataset, "--data-root", data_root,
                        "-p", "all-pairs", "-e", "classic", "-m", f"{plugin}:Noop", "-o", str(work / f"noop-cli-{i}"),
                        "-j", "2"], check=True, env=env, stdout=subprocess.DEVNULL)
        command.append(time.perf_counter() - t0)
    return {"dataset": dataset, "comparisons": len(pairs.pairs), "workers": 2,
            "run_benchmark_s": float(np.median(inproc)), "command_s": float(np.median(command)),
            "run_benchmark_samples": inproc, "command_samples": command}


def backends(data_root: str, work: Path, cache: Path, dataset: str, matcher: str) -> dict:
    from bench import datasets, protocols
    from bench.engine.backends import DaskBackend, LocalBackend

    ds = datasets.open_dataset(dataset, data_root=data_root)
    pairs = protocols.all_pairs(ds)
    _run(ds, pairs, "classic", matcher, work / "warm", cache)  # templates cached
    out = {"dataset": dataset, "matcher": matcher, "comparisons": len(pairs.pairs)}
    reference = None
    for kind in ("local", "dask"):
        for n in (1, 2):
            backend = LocalBackend(n) if kind == "local" else DaskBackend(local_workers=n)
            try:
                s = _run(ds, pairs, "classic", matcher, work / f"{kind}-{n}", cache, backend)
            finally:
                backend.close()
            manifest = json.loads((s.run_dir / "manifest.json").read_text())
            out[f"{kind}_{n}_comparison_wall_s"] = manifest["last_session"]["comparison_wall_seconds"]
            table = _scores(s.run_dir)
            reference = table if reference is None else reference
            out[f"{kind}_{n}_identical_scores"] = bool(table.equals(reference))
        out[f"{kind}_efficiency"] = out[f"{kind}_1_comparison_wall_s"] / (2 * out[f"{kind}_2_comparison_wall_s"])
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", default=os.environ.get("FINGERBENCH_DATA"), required=False)
    p.add_argument("--dataset", default="fvc2002-db1-b")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--parallel-matcher", default="bozorth3",
                   help="matcher of the local-vs-Dask run (slow enough for the efficiency to mean something)")
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = p.parse_args(argv)
    if not args.data_root:
        p.error("give --data-root (the folder of the FVC B sets) or set FINGERBENCH_DATA")
    # timed as installed: with byte-compiled modules cached (where PYTHONDONTWRITEBYTECODE is
    # set, every run would also compile each module in the driver and in every worker)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cache = work / "cache"
        result = {"mcc_1to1_vs_1n": mcc_rates(args.data_root, work, cache, args.dataset, args.repeats),
                  "fixed_cost": fixed_cost(args.data_root, work, cache, args.dataset, args.repeats),
                  "local_vs_dask": backends(args.data_root, work, cache, args.dataset, args.parallel_matcher)}
    from bench import provenance

    result["environment"] = provenance.environment()
    text = json.dumps(result, indent=2, default=str)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
