"""1:N search speed and scale on synthetic galleries: searches/s and comparisons/s versus
gallery size, latency on one thread, throughput on all cores, memory, harness overhead,
and the parallel efficiency of the local process pool and of a local Dask cluster.

For each gallery size (``--sizes``, default 1k, 10k, 100k templates; add 1000000 for a
million) the script builds a synthetic protocol (``--probes`` probes, one third mated,
FpVTE style) and runs it with the matcher (default: the built-in MCC) on all cores. At
``--efficiency-size`` it also runs one local worker, and a local Dask cluster with one
and with all workers, for the parallel efficiency. Every run is an ordinary
identification run directory under ``--out`` (resumable: run the script again after an
interruption and finished units are reused; timings of a resumed run are then partial,
so delete the run directory to time it again).

Run::

    python -m benchmarks.bench_1n --out runs/bench-1n
    python -m benchmarks.bench_1n --sizes 1000000 --probes 12 --out runs/bench-1n

It writes ``bench_1n.json`` (every number), ``bench_1n.md`` (the tables) and
``bench_1n.png`` (log-log plots) into ``--out``. Thread pools are limited to one thread
before numpy is imported, so every worker is single-threaded. On a shared machine,
wall-clock numbers include waiting for a core: compare the CPU-time columns too.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("benchmarks.bench_1n")

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


class NullMatcher:
    """Scores templates by their minutiae counts alone, at almost no cost per comparison.

    Not a fingerprint matcher: a stand-in that measures what the harness itself costs
    (loading shards, making Template objects, reducing scores, storing results), e.g.
    ``--matcher benchmarks.bench_1n:NullMatcher --sizes 1000000``.
    """

    version = "1"
    higher_is_better = True
    accepted_formats = ("minutiae",)

    def compare(self, probe: Any, reference: Any) -> float:
        return -abs(len(probe) - len(reference))

    def compare_many(self, probe: Any, gallery: Any) -> Any:
        import numpy as np

        counts = np.fromiter((len(t) for t in gallery), dtype=np.float64, count=len(gallery))
        return -np.abs(counts - len(probe))


def _config_name(kind: str, workers: int) -> str:
    return f"{kind}-{workers}w"


def run_one(size: int, probes: int, mated_fraction: float, kind: str, workers: int, args: argparse.Namespace) -> dict[str, Any]:
    from bench.plugins import registry
    from bench.identification import DaskBackend, IdentificationConfig, LocalBackend, run_identification
    from bench.protocols import identification as protocol
    from bench.identification.sources import TemplateSources
    from bench.plugins.loading import PluginSpec

    proto = protocol.synthetic(gallery_subjects=size, probes=probes, mated_fraction=mated_fraction, seed=args.seed)
    tag = "" if args.matcher == "mcc" else "-" + "".join(c if c.isalnum() else "_" for c in args.matcher.split(":")[-1])
    out = args.out / f"g{size}{tag}" / _config_name(kind, workers)
    spec = PluginSpec.resolve("matcher", args.matcher, registry.parse_params(args.matcher_param))
    config = IdentificationConfig(spec, out, TemplateSources(seed=args.seed, jobs=args.jobs),
                                  candidates=args.candidates, shard_size=args.shard_size,
                                  probe_batch=args.probe_batch, jobs=args.jobs, progress=args.progress)
    backend = LocalBackend(jobs=workers) if kind == "local" else DaskBackend(local_workers=workers)
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    try:
        summary = run_identification(proto, config, backend)
    finally:
        backend.close()
    wall = time.perf_counter() - t0
    t, m = summary.timing, summary.metrics
    row = {
        "gallery": size, "probes": probes, "matcher": args.matcher, "config": _config_name(kind, workers) + tag,
        "backend": kind,
        "workers": workers, "run_dir": str(out), "total_wall_seconds": wall,
        "units_computed": summary.units_computed, "units_reused": summary.units_reused,
        "comparisons": t["comparisons"],
        "latency_median_s": m["speed"]["median_search_seconds"],
        "latency_median_cpu_s": m["speed"]["median_search_cpu_seconds"],
        "searches_per_s_per_core": m["speed"]["searches_per_second_per_core"],
        "searches_per_cpu_s": m["speed"]["searches_per_cpu_second"],
        "comparisons_per_s_per_core": m["speed"]["comparisons_per_second_per_core"],
        "comparisons_per_cpu_s": m["speed"]["comparisons_per_cpu_second"],
        "prepare_ms_per_template": 1e3 * m["speed"]["gallery_prepare_seconds_per_template"],
        "prepare_cpu_ms_per_template": 1e3 * m["speed"]["gallery_prepare_cpu_seconds_per_template"],
        "store_bytes_per_template": t["memory"]["store_bytes_per_template"],
        "prepared_bytes_per_template": t["memory"].get("prepared_bytes_per_template"),
        "peak_worker_rss_mb": t["memory"]["peak_worker_rss_bytes"] / 2**20,
        "total_rss_mb": (t["memory"]["peak_worker_rss_bytes_sum"] + t["memory"]["driver_peak_rss_bytes"]) / 2**20,
        "rank1": m["rank_identification_rate"].get("1"),
        "template_build_seconds": t["template_build_seconds"],
        "load_average_1min": [load_before, os.getloadavg()[0]],
    }
    thr = t.get("throughput", {})
    if "wall_seconds" in thr:
        row.update({
            "search_wall_s": thr["wall_seconds"],
            "searches_per_s": thr["searches_per_second"],
            "comparisons_per_s": thr["comparisons_per_second"],
            "harness_cpu_share": thr["harness_cpu_share"],
            "matcher_wall_share": thr["matcher_wall_share"],
            "worker_cpu_s": thr["worker_cpu_seconds"],
            "matcher_cpu_s": thr["matcher_cpu_seconds"],
        })
    log.info("%s", json.dumps(row))
    return row


def _efficiency(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for kind in ("local", "dask"):
        one = [r for r in rows if r["backend"] == kind and r["workers"] == 1 and "search_wall_s" in r]
        for r in rows:
            if r["backend"] != kind or r["workers"] == 1 or "search_wall_s" not in r:
                continue
            base = [o for o in one if o["gallery"] == r["gallery"] and o.get("matcher") == r.get("matcher")]
            if not base:
                continue
            b = base[0]
            speedup = b["search_wall_s"] / r["search_wall_s"]
            out.append({"gallery": r["gallery"], "backend": kind, "workers": r["workers"],
                        "one_worker_wall_s": b["search_wall_s"], "wall_s": r["search_wall_s"],
                        "speedup": speedup, "efficiency": speedup / r["workers"],
                        "cpu_per_comparison_ratio": (r["matcher_cpu_s"] / r["comparisons"])
                        / (b["matcher_cpu_s"] / b["comparisons"]),
                        "note": "efficiency = T(1 worker) / (n x T(n workers)), wall-clock of the search phase"})
    return out


def _markdown(rows: list[dict[str, Any]], eff: list[dict[str, Any]]) -> str:
    def f(v: Any, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    lines = ["| gallery | config | searches/s | comparisons/s | latency median (s) [CPU] | comparisons/s/core "
             "[per CPU-s] | prepare ms/template [CPU] | harness CPU share | matcher wall share | store B/template "
             "| prepared B/template | peak worker RSS MB | total RSS MB | rank-1 |",
             "|" + "---|" * 14]
    for r in rows:
        lines.append(
            f"| {r['gallery']:,} | {r['config']} | {f(r.get('searches_per_s'), '.3g')} | "
            f"{f(r.get('comparisons_per_s'), ',.0f')} | {f(r['latency_median_s'], '.3g')} "
            f"[{f(r['latency_median_cpu_s'], '.3g')}] | {f(r['comparisons_per_s_per_core'], ',.0f')} "
            f"[{f(r['comparisons_per_cpu_s'], ',.0f')}] | {f(r['prepare_ms_per_template'], '.3g')} "
            f"[{f(r['prepare_cpu_ms_per_template'], '.3g')}] | {f(r.get('harness_cpu_share'), '.2%')} | "
            f"{f(r.get('matcher_wall_share'), '.2%')} | {f(r['store_bytes_per_template'], '.0f')} | "
            f"{f(r['prepared_bytes_per_template'], ',.0f')} | {f(r['peak_worker_rss_mb'], '.0f')} | "
            f"{f(r['total_rss_mb'], '.0f')} | {f(r['rank1'], '.3f')} |")
    if eff:
        lines += ["", "| gallery | backend | workers | T(1) s | T(n) s | speedup | efficiency | CPU per comparison "
                  "vs 1 worker |", "|" + "---|" * 8]
        for e in eff:
            lines.append(f"| {e['gallery']:,} | {e['backend']} | {e['workers']} | {e['one_worker_wall_s']:.1f} | "
                         f"{e['wall_s']:.1f} | {e['speedup']:.2f} | {e['efficiency']:.0%} | "
                         f"{e['cpu_per_comparison_ratio']:.2f} |")
    return "\n".join(lines) + "\n"


def _plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Log-log searches/s and comparisons/s against gallery size, per matcher: the
    all-cores throughput of the local pool (wall-clock) and the one-thread rate from the
    latency (time inside the matcher per search)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    for n, name in enumerate(sorted({r.get("matcher", "mcc") for r in rows}, key=lambda m: (m != "mcc", m))):
        mine = [r for r in rows if r.get("matcher", "mcc") == name]
        short = "no-op matcher (harness alone)" if name.endswith("NullMatcher") else name.split(":")[-1]
        colour = f"C{n}"
        widest = max(r["workers"] for r in mine if r["backend"] == "local") if any(
            r["backend"] == "local" for r in mine) else 0
        allc = sorted([r for r in mine if r["backend"] == "local" and r["workers"] == widest and r.get("searches_per_s")],
                      key=lambda r: r["gallery"])
        one = sorted({r["gallery"]: r for r in mine if r["backend"] == "local"}.values(), key=lambda r: r["gallery"])
        if allc:
            g = [r["gallery"] for r in allc]
            axes[0].plot(g, [r["searches_per_s"] for r in allc], "o-", color=colour,
                         label=f"{short}: {widest} workers (wall)")
            axes[1].plot(g, [r["comparisons_per_s"] for r in allc], "o-", color=colour,
                         label=f"{short}: {widest} workers (wall)")
        if one:
            g = [r["gallery"] for r in one]
            axes[0].plot(g, [r["searches_per_s_per_core"] for r in one], "s--", color=colour, alpha=0.7,
                         label=f"{short}: 1 thread (latency)")
            axes[1].plot(g, [r["comparisons_per_s_per_core"] for r in one], "s--", color=colour, alpha=0.7,
                         label=f"{short}: 1 thread (latency)")
    for ax, title in zip(axes, ("searches / s", "comparisons / s")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("gallery templates")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    fig.savefig(path, dpi=120)


def _write(out: Path, rows: dict[tuple[int, str], dict[str, Any]]) -> None:
    """bench_1n.json, .md and .png from the rows measured so far."""
    from bench import provenance

    ordered = sorted(rows.values(), key=lambda r: (r["gallery"], r["config"]))
    eff = _efficiency(ordered)
    (out / "bench_1n.json").write_text(json.dumps({"runs": ordered, "efficiency": eff,
                                                   "environment": provenance.environment(),
                                                   "load_average": os.getloadavg()}, indent=1, default=str) + "\n")
    (out / "bench_1n.md").write_text(_markdown(ordered, eff))
    _plot(ordered, out / "bench_1n.png")


def calibrate(data_root: Path, out: Path, n_synthetic: int = 400) -> dict[str, Any]:
    """The calibration table of the synthetic minutiae model: template statistics of
    real templates (ISO records of the FVC2002 B sets from a commercial extractor, NBIS
    MINDTCT output for FVC2000 DB1 B) next to synthetic ones, and MCC genuine and
    impostor scores of both (all pairs within each set)."""
    import numpy as np

    from bench import metrics
    from bench.formats import read_template
    from bench.synthetic import model as syn

    sets: dict[str, tuple[list[Any], list[str]]] = {}
    iso_root = data_root / "templates" / "iso19794-2-fvc2002"
    for db in sorted(p.name for p in iso_root.glob("DB*_B")):
        files = sorted((iso_root / db).glob("*.iso"))
        sets[f"ISO FVC2002 {db}"] = ([read_template(f) for f in files], [f.stem.split("_")[0] for f in files])
    xyt = sorted((data_root / "templates" / "nbis-fvc2000-db1b" / "xyt").glob("*.xyt"))
    if xyt:
        sets["MINDTCT FVC2000 DB1_B"] = ([read_template(f, width=300, height=300) for f in xyt],
                                         [f.stem.split("_")[0] for f in xyt])
    model = syn.MinutiaeModel()
    fingers = n_synthetic // 8
    ids = [syn.template_id(s, i) for s in range(1, fingers + 1) for i in range(1, 9)]
    sets["synthetic (8 impressions)"] = (syn.make_templates(model, 0, ids), [i.split("_")[0] for i in ids])
    table: dict[str, Any] = {}
    try:
        from extractors.mcc import MccMatcher

        mcc: Any = MccMatcher()
    except ImportError:  # pragma: no cover
        mcc = None
    for name, (templates, subjects) in sets.items():
        row = syn.template_statistics(templates)
        if mcc is not None and len(templates) <= 400:
            s = np.array([mcc.compare_many(t, templates) for t in templates])
            subj = np.asarray(subjects)
            same = subj[:, None] == subj[None, :]
            upper = np.triu(np.ones_like(same), 1)
            gen, imp = s[same & upper], s[~same & upper]
            row["mcc_genuine_median"] = round(float(np.median(gen)), 4)
            row["mcc_genuine_p10"] = round(float(np.percentile(gen, 10)), 4)
            row["mcc_impostor_median"] = round(float(np.median(imp)), 4)
            row["mcc_impostor_p99_9"] = round(float(np.percentile(imp, 99.9)), 4)
            row["mcc_eer"] = round(metrics.eer(gen, imp).eer, 4)
        table[name] = row
        log.info("%s: %s", name, row)
    out.mkdir(parents=True, exist_ok=True)
    (out / "calibration.json").write_text(json.dumps({"model": model.to_dict(), "sets": table}, indent=1) + "\n")
    return table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1000,10000,100000", help="gallery sizes, comma-separated")
    p.add_argument("--probes", type=int, default=60, help="probes per run (one third mated)")
    p.add_argument("--mated-fraction", type=float, default=1 / 3)
    p.add_argument("--matcher", default="mcc")
    p.add_argument("--matcher-param", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--candidates", type=int, default=100)
    p.add_argument("--shard-size", type=int, default=1000)
    p.add_argument("--probe-batch", type=int, default=1024)
    p.add_argument("--jobs", type=int, default=0, help="workers of the all-cores runs (0 = all cores)")
    p.add_argument("--efficiency-size", type=int, default=10000,
                   help="gallery size of the parallel-efficiency runs (0: none)")
    p.add_argument("--no-dask", action="store_true", help="skip the Dask runs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("runs/bench-1n"))
    p.add_argument("--progress", action="store_true")
    p.add_argument("--tables-only", action="store_true",
                   help="only rewrite bench_1n.md and bench_1n.png from the measurements in bench_1n.json")
    p.add_argument("--calibrate", type=Path, metavar="DATA_ROOT",
                   help="only compare synthetic templates with the real templates under DATA_ROOT/templates")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("distributed").setLevel(logging.WARNING)
    if args.calibrate:
        for name, row in calibrate(args.calibrate, args.out).items():
            print(name, json.dumps(row))
        return 0
    n = args.jobs if args.jobs > 0 else (os.cpu_count() or 1)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    plan: list[tuple[int, str, int]] = []
    for size in sizes:
        if size == args.efficiency_size:
            plan.append((size, "local", 1))
        plan.append((size, "local", n))
        if size == args.efficiency_size and not args.no_dask:
            plan += [(size, "dask", 1), (size, "dask", n)]
    args.out.mkdir(parents=True, exist_ok=True)
    result_path = args.out / "bench_1n.json"
    previous = json.loads(result_path.read_text()) if result_path.exists() else {}
    rows = {(r["gallery"], r["config"]): r for r in previous.get("runs", [])}
    if args.tables_only:
        if not rows:
            p.error(f"{result_path}: no measurements to tabulate")
        _write(args.out, rows)
        plan = []
    for size, kind, workers in plan:
        row = run_one(size, args.probes, args.mated_fraction, kind, workers, args)
        if row["units_computed"] == 0 and (size, row["config"]) in rows:
            continue  # nothing new was measured: keep the earlier timings
        rows[(size, row["config"])] = row
        _write(args.out, rows)
    print((args.out / "bench_1n.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
