"""How faithful the synthetic minutiae galleries are: MCC score distributions of the
minutiae model against the eight FVC2000/2002 B sets, and the held-out calibration.

What it measures (classic extractor + MCC matcher, all-pairs protocol on each B set:
280 genuine and 2,880 impostor comparisons per set):

1. the genuine and impostor score distributions of every real set, through
   ``bench.runner.run_benchmark`` (templates come from the template cache, so a second
   run extracts nothing);
2. the same distributions for synthetic "sets" of the minutiae model
   (:mod:`bench.synthetic.model`), 10 fingers x 8 impressions each, all pairs,
   as many sets as ``--synthetic-sets`` (the default gives 20x the impostors of one
   FVC group, so the 99.99th percentile is resolved);
3. quantiles (impostor 50/90/99/99.9/99.99 %, genuine 1/5/50 %), the two-sample
   Kolmogorov-Smirnov statistic of each distribution against the real one, and the
   ratio of the impostor tail quantiles (synthetic / real);
4. the calibration, held out: a small coordinate search over the model's score
   parameters (``SEARCH``) that minimises :func:`calibration_loss` against FVC2000's
   pooled scores is reported on FVC2002's, and the search on FVC2002 is reported on
   FVC2000. The model shipped as the default (version 2) is the one fitted on FVC2000,
   so the FVC2002 figures are the held-out ones for it.

Run::

    python -m benchmarks.calibration --data-root ../shared/datasets

It writes ``docs/data/calibration.json`` and ``docs/img/synthetic_calibration.png`` (which
``python -m benchmarks.figures calibration`` redraws from the JSON) and prints the Markdown
table of docs/identification.md. ``--skip-search`` evaluates the
stored models without searching again.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]  # the project
FVC2000 = ("fvc2000-db1-b", "fvc2000-db2-b", "fvc2000-db3-b", "fvc2000-db4-b")
FVC2002 = ("fvc2002-db1-b", "fvc2002-db2-b", "fvc2002-db3-b", "fvc2002-db4-b")
IMPOSTOR_Q = (50.0, 90.0, 99.0, 99.9, 99.99)
GENUINE_Q = (1.0, 5.0, 50.0)
#: Parameters the calibration may move, with the values it tries for each.
SEARCH: dict[str, tuple[Any, ...]] = {
    "density": (0.7e-3, 0.85e-3, 1.0e-3, 1.2e-3, 1.4e-3, 1.7e-3, 2.0e-3),
    "min_distance": (5.0, 8.0, 11.0, 14.0),
    "angle_noise": (0.0, 0.05, 0.10, 0.17, 0.25),
    "contact_half_width": ((45.0, 90.0), (60.0, 110.0), (80.0, 145.0), (100.0, 160.0)),
    "contact_half_height": ((65.0, 115.0), (80.0, 140.0), (105.0, 180.0), (140.0, 220.0)),
    "dropout": ((0.0, 0.05), (0.0, 0.10), (0.05, 0.25), (0.15, 0.40)),
    "spurious": (0.0, 0.05, 0.10, 0.30, 0.60),
    "distortion": (0.0, 1.0, 2.0, 6.0, 12.0),
    "position_jitter": (0.5, 1.0, 2.0, 4.0),
    "angle_jitter": (math.radians(3.0), math.radians(7.0), math.radians(12.0), math.radians(18.0)),
    "rotation_sd": (math.radians(5.0), math.radians(10.0), math.radians(20.0)),
}

#: Genuine scores, impostor scores, minutiae count per template.
Scores = tuple[np.ndarray, np.ndarray, np.ndarray]

log = logging.getLogger("benchmarks.calibration")


# ------------------------------------------------------------------ statistics
def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the empirical
    distribution functions of ``a`` and ``b`` (evaluated at every observed value)."""
    a = np.sort(np.asarray(a, dtype=np.float64))
    b = np.sort(np.asarray(b, dtype=np.float64))
    if a.size == 0 or b.size == 0:
        raise ValueError("the KS statistic needs two non-empty samples")
    x = np.concatenate([a, b])
    fa = np.searchsorted(a, x, side="right") / a.size
    fb = np.searchsorted(b, x, side="right") / b.size
    return float(np.max(np.abs(fa - fb)))


def quantiles(scores: np.ndarray, qs: Sequence[float]) -> dict[str, float]:
    """Percentiles of ``scores`` (linear interpolation, numpy's default), keyed 'q<q>'."""
    values = np.percentile(np.asarray(scores, dtype=np.float64), qs)
    return {f"q{q:g}": float(v) for q, v in zip(qs, values)}


def describe(genuine: np.ndarray, impostor: np.ndarray, counts: np.ndarray) -> dict[str, Any]:
    return {"n_genuine": int(genuine.size), "n_impostor": int(impostor.size),
            "minutiae_mean": float(np.mean(counts)),
            "genuine": quantiles(genuine, GENUINE_Q), "impostor": quantiles(impostor, IMPOSTOR_Q)}


def compare_to(real: Scores, other: Scores) -> dict[str, Any]:
    """Two-sample distances of ``other``'s distributions from ``real``'s: KS statistics,
    the ratio (other / real) of each impostor tail quantile and genuine quantile, and of
    the mean minutiae count per template."""
    rq_i, oq_i = quantiles(real[1], IMPOSTOR_Q), quantiles(other[1], IMPOSTOR_Q)
    rq_g, oq_g = quantiles(real[0], GENUINE_Q), quantiles(other[0], GENUINE_Q)
    return {"ks_genuine": ks_statistic(real[0], other[0]), "ks_impostor": ks_statistic(real[1], other[1]),
            "impostor_ratio": {k: oq_i[k] / rq_i[k] for k in ("q99", "q99.9", "q99.99")},
            "genuine_ratio": {k: oq_g[k] / rq_g[k] for k in rq_g},
            "count_ratio": float(np.mean(other[2]) / np.mean(real[2]))}


def calibration_loss(real: Scores, other: Scores) -> float:
    """What the calibration minimises: the two KS statistics plus the absolute log ratios
    of the impostor 99th, 99.9th and 99.99th percentiles (the tail that sets FPIR at scale),
    of the genuine 5th percentile and median, and of the mean minutiae count (so that the
    matcher's work per comparison stays that of real templates)."""
    c = compare_to(real, other)
    logs = [abs(np.log(v)) for v in c["impostor_ratio"].values()]
    logs += [abs(np.log(c["genuine_ratio"][k])) for k in ("q5", "q50")]
    logs.append(abs(np.log(c["count_ratio"])))
    return float(c["ks_genuine"] + c["ks_impostor"] + sum(logs))


# ------------------------------------------------------------------ real scores
def real_scores(data_root: Path, names: Sequence[str], work: Path, jobs: int) -> dict[str, Scores]:
    """Genuine and impostor scores (status ok) of classic + MCC under all pairs, and the
    minutiae count of every template, per set."""
    from bench import datasets, protocols
    from bench.plugins.loading import PluginSpec
    from bench.runner import RunConfig, run_benchmark
    from bench.store.template_cache import default_cache_dir

    out: dict[str, Scores] = {}
    for name in names:
        ds = datasets.open_dataset(name, data_root=str(data_root))
        pairs = protocols.build("all-pairs", ds)
        cfg = RunConfig(extractor=PluginSpec.resolve("extractor", "classic"),
                        matcher=PluginSpec.resolve("matcher", "mcc"), out=work / name,
                        cache_dir=default_cache_dir(), jobs=jobs, progress=False)
        t0 = time.perf_counter()
        run_benchmark(ds, pairs, cfg)
        log.info("%s: all pairs in %.1f s", name, time.perf_counter() - t0)
        gen, imp = [], []
        with open(work / name / "scores.csv", newline="") as fh:
            for row in csv.DictReader(fh):
                if row["status"] != "ok":
                    continue
                (gen if row["genuine"] in ("1", "True", "true") else imp).append(float(row["score"]))
        with open(work / name / "extractions.csv", newline="") as fh:
            counts = [int(r["n_minutiae"]) for r in csv.DictReader(fh) if r["status"] == "ok"]
        out[name] = (np.asarray(gen), np.asarray(imp), np.asarray(counts, dtype=np.float64))
    return out


# ------------------------------------------------------------------ synthetic scores
def synthetic_scores(model: Any, seed: int, n_sets: int, fingers: int = 10, impressions: int = 8,
                     matcher: Any = None) -> Scores:
    """All-pairs genuine and impostor MCC scores of ``n_sets`` synthetic sets of
    ``fingers`` x ``impressions`` (set k holds subjects k*fingers+1 ...), and the
    minutiae counts of their templates."""
    from bench.synthetic import model as syn

    if matcher is None:
        from extractors.mcc import MccMatcher
        matcher = MccMatcher()
    gen, imp, counts = [], [], []
    for k in range(n_sets):
        subjects = [k * fingers + f for f in range(1, fingers + 1)]
        ids = [syn.template_id(s, i) for s in subjects for i in range(1, impressions + 1)]
        ts = syn.make_templates(model, seed, ids)
        counts += [len(t) for t in ts]
        subj = np.repeat(np.arange(fingers), impressions)
        for i in range(len(ts) - 1):
            s = np.asarray(matcher.compare_many(ts[i], ts[i + 1:]), dtype=np.float64)
            same = subj[i + 1:] == subj[i]
            gen.append(s[same])
            imp.append(s[~same])
    return np.concatenate(gen), np.concatenate(imp), np.asarray(counts, dtype=np.float64)


def pooled(scores: dict[str, Scores], names: Sequence[str]) -> Scores:
    return (np.concatenate([scores[n][0] for n in names]), np.concatenate([scores[n][1] for n in names]),
            np.concatenate([scores[n][2] for n in names]))


def search(target: Scores, seed: int, n_sets: int, label: str) -> dict[str, Any]:
    """The coordinate search over ``SEARCH`` from version 1 of the model, against
    ``target``; the model found is labelled version ``label``."""
    from bench.synthetic import model as syn
    from extractors.mcc import MccMatcher

    matcher = MccMatcher()

    def loss(m: Any) -> float:
        return calibration_loss(target, synthetic_scores(m, seed, n_sets, matcher=matcher))

    best, best_loss, trail = coordinate_search(syn.model_version("1"), loss, SEARCH)
    return {"model": replace(best, version=label).to_dict(), "loss": best_loss, "steps": len(trail), "trail": trail}


def coordinate_search(start: Any, loss: Callable[[Any], float], space: dict[str, tuple[Any, ...]],
                      rounds: int = 3) -> tuple[Any, float, list[dict[str, Any]]]:
    """Cyclic coordinate descent over a grid: each parameter in turn takes the value of
    its grid with the lowest loss, the others held; ``rounds`` passes."""
    best, best_loss = start, loss(start)
    trail = [{"params": {}, "loss": best_loss}]
    for _ in range(rounds):
        changed = False
        for key, values in space.items():
            for v in values:
                if v == getattr(best, key):
                    continue
                cand = replace(best, **{key: v})
                cl = loss(cand)
                trail.append({"params": {key: v}, "loss": cl})
                log.info("  %s=%s: loss %.4f (best %.4f)", key, v, cl, best_loss)
                if cl < best_loss - 1e-9:
                    best, best_loss, changed = cand, cl, True
        if not changed:
            break
    return best, best_loss, trail


def _stable(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=list)


# ------------------------------------------------------------------ outputs
def markdown_table(result: dict[str, Any]) -> str:
    head = ("| scores | genuine / impostor | genuine 1 / 5 / 50 % | impostor 50 / 90 / 99 % | impostor 99.9 / 99.99 % "
            "| KS genuine / impostor | impostor 99.9 / 99.99 % ratio |")
    lines = [head, "|" + "---|" * 7]

    def row(label: str, d: dict[str, Any], c: dict[str, Any] | None) -> str:
        g, i = d["genuine"], d["impostor"]
        ks = f"{c['ks_genuine']:.3f} / {c['ks_impostor']:.3f}" if c else "-"
        ratio = f"{c['impostor_ratio']['q99.9']:.2f} / {c['impostor_ratio']['q99.99']:.2f}" if c else "-"
        return (f"| {label} | {d['n_genuine']:,} / {d['n_impostor']:,} | {g['q1']:.4f} / {g['q5']:.4f} / {g['q50']:.4f} "
                f"| {i['q50']:.4f} / {i['q90']:.4f} / {i['q99']:.4f} | {i['q99.9']:.4f} / {i['q99.99']:.4f} | {ks} | {ratio} |")

    for name, d in result["real"].items():
        lines.append(row(name, d, None))
    for group in ("fvc2000", "fvc2002"):
        lines.append(row(f"**{group.upper()} pooled**", result["pooled"][group], None))
    for key, m in result["models"].items():
        for group in ("fvc2000", "fvc2002"):
            fit = m.get("fitted_on")
            note = "" if fit is None else (" (held out)" if fit != group else " (fitted here)")
            name = f"model version {key}" if key in ("1", "2") else f"model {key}"
            lines.append(row(f"{name} vs {group.upper()}{note}", m["scores"], m["against"][group]))
    return "\n".join(lines)


GENUINE_GRID = np.round(np.arange(0.0, 0.4001, 0.005), 4)
IMPOSTOR_GRID = np.round(np.arange(0.0, 0.06001, 0.0005), 4)


def curves_of(scores: Scores) -> dict[str, list[float]]:
    """The distributions on fixed grids, for the figure: the share of genuine scores <= x
    and of impostor scores >= x."""
    gen, imp = np.sort(scores[0]), np.sort(scores[1])
    return {"genuine_cdf": (np.searchsorted(gen, GENUINE_GRID, side="right") / gen.size).tolist(),
            "impostor_sf": (1.0 - np.searchsorted(imp, IMPOSTOR_GRID, side="left") / imp.size).tolist()}


def figure(result: dict[str, Any], path: Path) -> Path:
    """Genuine CDF and impostor tail (log) of the real groups and the model versions, from
    the curves stored in ``result`` (docs/data/calibration.json)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_g, ax_i) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, c in result["curves"].items():
        style = "-" if label.startswith("FVC") else "--"
        ax_g.plot(GENUINE_GRID, c["genuine_cdf"], style, label=label)
        sf = np.asarray(c["impostor_sf"], dtype=np.float64)
        ax_i.semilogy(IMPOSTOR_GRID[sf > 0], sf[sf > 0], style, label=label)
    ax_g.set_xlabel("MCC score (genuine)")
    ax_g.set_ylabel("share of genuine scores <= score")
    ax_i.set_xlabel("MCC score (impostor)")
    ax_i.set_ylabel("share of impostor scores >= score (log)")
    ax_i.set_ylim(1e-5, 1.05)
    for ax in (ax_g, ax_i):
        ax.grid(True, alpha=0.3)
    ax_i.legend(fontsize=8)
    fig.suptitle("classic + MCC, all pairs: FVC B sets (pooled) and the synthetic minutiae model")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", type=Path, required=True, help="folder holding fvc2000/ and fvc2002/")
    ap.add_argument("--work", type=Path, default=None,
                    help="folder for the all-pairs run directories (default: the cache folder's calibration-runs/)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0, help="synthetic seed of the reported sets")
    ap.add_argument("--search-seed", type=int, default=1, help="synthetic seed used while searching")
    ap.add_argument("--synthetic-sets", type=int, default=20, help="synthetic 10 x 8 sets per reported model")
    ap.add_argument("--search-sets", type=int, default=8, help="synthetic 10 x 8 sets per search step")
    ap.add_argument("--skip-search", action="store_true", help="only evaluate the model versions shipped")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "data" / "calibration.json")
    ap.add_argument("--figure", type=Path, default=ROOT / "docs" / "img" / "synthetic_calibration.png")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)

    from bench.synthetic import model as syn
    from bench.store.template_cache import default_cache_dir
    from extractors.mcc import MccMatcher

    t_start = time.perf_counter()
    work = args.work or default_cache_dir() / "calibration-runs"
    real = real_scores(args.data_root, FVC2000 + FVC2002, work, args.jobs)
    groups = {"fvc2000": pooled(real, FVC2000), "fvc2002": pooled(real, FVC2002)}
    t_real = time.perf_counter() - t_start
    matcher = MccMatcher()

    searches: dict[str, Any] = {}
    if args.skip_search and args.out.is_file():
        searches = json.loads(args.out.read_text()).get("searches", {})
    if not args.skip_search:
        # the two searches are independent: one process each
        with ProcessPoolExecutor(max_workers=max(1, min(2, args.jobs))) as pool:
            futures = {fit: pool.submit(search, groups[fit], args.search_seed, args.search_sets, f"fitted on {fit.upper()}")
                       for fit in ("fvc2000", "fvc2002")}
            searches = {fit: f.result() for fit, f in futures.items()}

    # version 2 (the default) is the model fitted on FVC2000; a search whose result differs
    # from it (the code changed since) is reported beside it
    models: dict[str, Any] = {"1": syn.model_version("1"), "2": syn.model_version("2")}
    fitted_on = {"1": None, "2": "fvc2000"}

    def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
        return _stable({**a, "version": ""}) == _stable({**b, "version": ""})

    for fit, s in searches.items():
        if not (fit == "fvc2000" and same(s["model"], models["2"].to_dict())):
            models[s["model"]["version"]] = syn.MinutiaeModel(**{k: tuple(v) if isinstance(v, list) else v
                                                                 for k, v in s["model"].items()})
            fitted_on[s["model"]["version"]] = fit
    result: dict[str, Any] = {
        "protocol": "all-pairs within each set (FVC B: 280 genuine, 2,880 impostor); classic extractor, mcc matcher",
        "real": {n: describe(*real[n]) for n in real},
        "pooled": {g: describe(*v) for g, v in groups.items()},
        "models": {}, "searches": searches,
        "settings": {"seed": args.seed, "search_seed": args.search_seed, "synthetic_sets": args.synthetic_sets,
                     "search_sets": args.search_sets, "search_space": {k: list(v) for k, v in SEARCH.items()}},
    }
    curves = {f"{g.upper()} pooled": curves_of(v) for g, v in groups.items()}
    for key, model in models.items():
        sc = synthetic_scores(model, args.seed, args.synthetic_sets, matcher=matcher)
        result["models"][key] = {"model": model.to_dict(), "fitted_on": fitted_on[key],
                                 "scores": describe(*sc),
                                 "against": {g: {**compare_to(v, sc), "loss": calibration_loss(v, sc)}
                                             for g, v in groups.items()}}
        if key in ("1", "2"):
            curves[f"model version {key}"] = curves_of(sc)
    result["curves"] = curves
    result["seconds"] = {"real_runs": round(t_real, 1), "total": round(time.perf_counter() - t_start, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    figure(result, args.figure)
    print(markdown_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
