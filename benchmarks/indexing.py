"""The accuracy / speed trade-off of 1:N pre-selection, on synthetic galleries.

For each gallery size (``--sizes``) the same protocol (``--probes`` searches, one third
mated) is run by every system: exhaustive MCC (NS = 16, the matcher's default, and NS =
8), and each cascade (an index in front of MCC) at each of its budgets (``--budgets``,
penetration rates). Every run is an ordinary identification run directory under
``--out`` (resumable). The script writes into ``--out``:

* ``indexing.json``: per run, rank-1, FNIR at FPIR = 1 %, penetration, the index's hit
  rate, median search CPU time per probe on one thread (index + matcher), gallery
  preparation and index build per template, memory; and the oracle curve of each
  exhaustive run;
* ``indexing.md``: the table, with each cascade's share of exhaustive MCC's rank-1 and its
  speed-up per probe;
* ``indexing.png``: the Pareto chart (rank-1 and FNIR at FPIR = 1 % against search time
  per probe, one panel per gallery size, one curve per system), the hit rate against
  penetration with the oracle curve, and FPIR at fixed thresholds against gallery size
  for exhaustive MCC.

Run::

    python -m benchmarks.indexing --out runs/indexing
    python -m benchmarks.indexing --sizes 1000000 --probes 60 --large-budgets 0.02 --out runs/indexing \
        --systems "MCC NS=16, exhaustive" "MCC-LSH -> MCC" "MCC-ANN (HNSW) -> MCC"
    python -m benchmarks.indexing --out runs/indexing --tables-only   # redraw from the JSON

The index parameters are their defaults, chosen on galleries of another seed (the
templates here are drawn with seed 0; the defaults were chosen on seed 7), so nothing is
tuned on the galleries reported. Thread pools are limited to one thread before numpy is
imported; search times are CPU seconds per probe (steady on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
from typing import Any

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

log = logging.getLogger("benchmarks.indexing")

#: (system name, matcher parameters, index target or None, index parameters)
SYSTEMS = (
    ("MCC NS=16, exhaustive", {}, None, {}),
    ("MCC NS=8, exhaustive", {"ns": 8}, None, {}),
    ("MCC-LSH -> MCC", {}, "extractors.mcc.index:MccLshIndex", {}),
    ("MCC-LSH 256 tables -> MCC", {}, "extractors.mcc.index:MccLshIndex", {"tables": 256}),
    ("MCC-ANN (HNSW) -> MCC", {}, "extractors.mcc.index:MccVectorIndex", {}),
)


def run_one(size: int, probes: int, system: tuple[str, dict[str, Any], str | None], budget: float,
            args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from bench.identification import IdentificationConfig, LocalBackend, run_identification
    from bench.protocols import identification as protocol
    from bench.identification.cascade import IndexSettings
    from bench.identification.results import read_table
    from bench.identification.sources import TemplateSources
    from bench.metrics.identification import oracle_needed_penetration
    from bench.plugins.loading import PluginSpec
    from bench.store import read_json

    name, mparams, index, iparams = system
    proto = protocol.synthetic(size, probes, protocol.FPVTE_MATED_FRACTION, 1, 0)
    slug = name.split(",")[0].replace(" ", "").replace("->", "+").replace("(", "").replace(")", "")
    out = args.out / f"g{size}-p{probes}" / (slug + (f"@{budget:g}" if index else ""))
    settings = IndexSettings(PluginSpec.resolve("index", index, iparams), budget) if index else None
    config = IdentificationConfig(PluginSpec.resolve("matcher", "extractors.mcc:MccMatcher", mparams), out,
                                  TemplateSources(seed=0, jobs=args.jobs), candidates=args.candidates,
                                  shard_size=args.shard_size, jobs=args.jobs, index=settings)
    backend = LocalBackend(jobs=args.jobs)
    try:
        s = run_identification(proto, config, backend)
    finally:
        backend.close()
    m, t = s.metrics, s.timing
    lat, mem = m["speed"], t["memory"]
    fnir = (m["fnir_at_fpir"].get("rank1") or {}).get("0.01") or {}
    row: dict[str, Any] = {
        "gallery": size, "probes": probes, "system": name, "index": index, "budget": budget if index else 1.0,
        "run": str(out.relative_to(args.out)), "n_mated": m["n_mated"],
        "rank1": m["rank_identification_rate"]["1"], "fnir_at_fpir_1pct": fnir.get("fnir"),
        "penetration": m["penetration_rate"],
        "search_cpu_s": lat["median_search_cpu_seconds"], "search_s": lat["median_search_seconds"],
        "prepare_cpu_ms_per_template": 1e3 * lat["gallery_prepare_cpu_seconds_per_template"],
        "peak_worker_rss_mib": mem["peak_worker_rss_bytes"] / 2**20,
    }
    if index:
        info = read_json(out / "index.json")
        row.update(hit_rate=info["hit_rate"], hit_rate_curve=info["hit_rate_curve"],
                   index_cpu_s=info["index_cpu_seconds_per_search"], work=info["work_per_search"],
                   build_cpu_ms_per_template=1e3 * info["build_cpu_seconds_per_template"],
                   index_bytes_per_template=info["memory_bytes_per_template"], faults=info["faults"])
    else:
        table = read_table(out / "searches")
        mated = np.asarray(table["mated"], dtype=bool) & np.asarray(table["enrolled"], dtype=bool)
        needed = oracle_needed_penetration(np.asarray(table["mate_rank"])[mated], size)
        row["oracle_needed_penetration"] = [None if not np.isfinite(x) else float(x) for x in needed]
        row["oracle_known_up_to"] = args.candidates / size
        nonmated = ~np.asarray(table["mated"], dtype=bool)
        row["nonmated_top_scores"] = [float(x) for x in np.asarray(table["top_score"], dtype=np.float64)[nonmated]]
    log.info("%s", {k: v for k, v in row.items() if k not in ("hit_rate_curve", "oracle_needed_penetration")})
    return row


def _markdown(rows: list[dict[str, Any]]) -> str:
    def f(v: Any, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    lines = ["| gallery | system | penetration budget | rank-1 % (share of exhaustive NS=16) | FNIR % at FPIR = 1 % "
             "| index hit rate % | search CPU s per probe (speed-up) | index CPU s per probe | index build ms/template "
             "| index bytes/template |", "|" + "---|" * 10]
    for size in sorted({r["gallery"] for r in rows}):
        group = [r for r in rows if r["gallery"] == size]
        ref = next((r for r in group if r["system"].startswith("MCC NS=16")), None)
        for r in sorted(group, key=lambda r: (r["index"] is not None, r["system"], r["budget"])):
            share = (f" ({100 * r['rank1'] / ref['rank1']:.1f} %)" if ref and ref["rank1"] else "")
            speed = (f" ({ref['search_cpu_s'] / r['search_cpu_s']:.1f}x)" if ref and r["search_cpu_s"] else "")
            lines.append(
                f"| {size:,} | {r['system']} | {100 * r['budget']:g} % | {100 * r['rank1']:.2f}{share} | "
                f"{f(None if r['fnir_at_fpir_1pct'] is None else 100 * r['fnir_at_fpir_1pct'], '.2f')} | "
                f"{f(None if r.get('hit_rate') is None else 100 * r['hit_rate'], '.1f')} | "
                f"{r['search_cpu_s']:.4g}{speed} | {f(r.get('index_cpu_s'), '.3g')} | "
                f"{f(r.get('build_cpu_ms_per_template'), '.3g')} | {f(r.get('index_bytes_per_template'), ',.0f')} |")
    return "\n".join(lines) + "\n"


def _plot(rows: list[dict[str, Any]], path: Path) -> None:
    from bench.identification.report import hit_rate_axes, pareto_axes
    from bench.report.plots import _figure, render

    sizes = sorted({r["gallery"] for r in rows})
    fig = _figure(4.2 * len(sizes), 15.0)
    for k, size in enumerate(sizes):
        group = [r for r in rows if r["gallery"] == size]
        points = [(r["system"], r["search_cpu_s"], r["rank1"], r["fnir_at_fpir_1pct"], r["budget"]) for r in group]
        pareto_axes(fig.add_subplot(4, len(sizes), k + 1), points, "rank1", f"{size:,} templates")
        pareto_axes(fig.add_subplot(4, len(sizes), len(sizes) + k + 1), points, "fnir", f"{size:,} templates")
        curves = [(f"{r['system']} @ {100 * r['budget']:g} %", r["hit_rate_curve"]["penetration"],
                   r["hit_rate_curve"]["hit_rate"]) for r in group if r.get("hit_rate_curve")]
        oracle = next((r for r in group if r["system"].startswith("MCC NS=16")), None)
        oracles = []
        if oracle:
            needed = [float("inf") if x is None else x for x in oracle["oracle_needed_penetration"]]
            oracles.append(("oracle (exhaustive MCC NS=16)", needed, oracle["oracle_known_up_to"]))
        hit_rate_axes(fig.add_subplot(4, len(sizes), 2 * len(sizes) + k + 1), curves, oracles,
                      f"hit rate, {size:,} templates")
    _fpir_growth(fig.add_subplot(4, len(sizes), 3 * len(sizes) + 1), rows)
    path.write_bytes(render(fig, "png"))


def fpir_at_thresholds(rows: list[dict[str, Any]], system: str) -> tuple[list[float], list[int], list[list[float]]]:
    """FPIR against gallery size at fixed thresholds: those at which the smallest gallery's
    exhaustive search has FPIR 10 % and 2 % (upper quantiles of its non-mated top scores)."""
    import numpy as np

    own = sorted((r for r in rows if r["system"] == system and r.get("nonmated_top_scores")),
                 key=lambda r: r["gallery"])
    if not own:
        return [], [], []
    first = np.asarray(own[0]["nonmated_top_scores"])
    thresholds = [float(np.quantile(first, q, method="higher")) for q in (0.9, 0.98)]
    fpir = [[float(np.mean(np.asarray(r["nonmated_top_scores"]) >= t)) for r in own] for t in thresholds]
    return thresholds, [r["gallery"] for r in own], fpir


def _fpir_growth(ax: Any, rows: list[dict[str, Any]]) -> None:
    from bench.report.plots import finish_axes

    for system, colour in (("MCC NS=16, exhaustive", "tab:blue"), ("MCC NS=8, exhaustive", "tab:orange")):
        thresholds, sizes, fpir = fpir_at_thresholds(rows, system)
        for t, f, style in zip(thresholds, fpir, ("-", "--")):
            ax.plot(sizes, [100 * x for x in f], style, marker="o", color=colour, ms=4,
                    label=f"{system}, T = {t:.3g}")
    ax.set_xscale("log")
    finish_axes(ax, "gallery templates (log)", "FPIR at a fixed threshold (%)",
                "FPIR grows with the gallery", "upper left", legend_size=6.5)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,10000,100000", help="gallery sizes, comma-separated")
    ap.add_argument("--probes", default="150,150,300", help="searches per size (one value, or one per size)")
    ap.add_argument("--budgets", default="0.01,0.05,0.2", help="penetration budgets of the cascades")
    ap.add_argument("--large-budgets", default="0.02,0.05", help="budgets at sizes of 100,000 and above (time)")
    ap.add_argument("--candidates", type=int, default=100)
    ap.add_argument("--shard-size", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("runs/indexing"))
    ap.add_argument("--systems", nargs="+", choices=[s[0] for s in SYSTEMS], help="only these systems (default all)")
    ap.add_argument("--tables-only", action="store_true", help="redraw the table and figure from indexing.json")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    store = args.out / "indexing.json"
    rows: list[dict[str, Any]] = json.loads(store.read_text())["rows"] if store.exists() else []
    if not args.tables_only:
        sizes = [int(x) for x in args.sizes.split(",")]
        probes = [int(x) for x in args.probes.split(",")]
        probes = probes * len(sizes) if len(probes) == 1 else probes
        for size, n in zip(sizes, probes):
            budgets = args.large_budgets if size >= 100_000 else args.budgets
            for system in (s for s in SYSTEMS if not args.systems or s[0] in args.systems):
                for budget in ([float(b) for b in budgets.split(",")] if system[2] else [1.0]):
                    row = run_one(size, n, system, budget, args)
                    rows = [r for r in rows if (r["gallery"], r["system"], r["budget"]) !=
                            (row["gallery"], row["system"], row["budget"])] + [row]
                    store.write_text(json.dumps({"rows": rows}, indent=1))
    (args.out / "indexing.md").write_text(_markdown(rows))
    _plot(rows, args.out / "indexing.png")
    print((args.out / "indexing.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
