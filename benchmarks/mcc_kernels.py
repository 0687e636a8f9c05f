"""MCC kernels side by side: the numpy reference, the compiled (numba) kernel and the
PyTorch path, on the same templates, in one process, one thread.

For each kernel and each ``--ns``: 1:N comparisons per second (one prepared probe against
a prepared, stacked gallery of ``--gallery`` templates, as an identification system keeps
it), 1:1 comparisons per second (``compare`` on prepared templates), the time to prepare
a template (its cylinders), and the largest score difference from the reference. Rates
are per CPU-second and per wall-second; ratios are to the numpy reference measured in the
same run, which is what to compare on a shared machine. The first call of the compiled
kernel (compilation, or loading it from numba's disk cache) is timed apart, in a fresh
process, and kept out of every other figure.

Templates: the ISO/IEC 19794-2 templates of the FVC2002 B sets (a commercial extractor,
about 32 minutiae each) under ``--data-root``, or synthetic ones where that is absent.

Run::

    python -m benchmarks.mcc_kernels --data-root ../shared/datasets --json docs/data/mcc_kernels.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402


def load_templates(data_root: Path | None, n_synthetic: int, seed: int) -> tuple[list[Any], str]:
    from bench.formats import read_template
    from bench.template import Template, make_minutiae

    if data_root is not None:
        paths = sorted((data_root / "templates" / "iso19794-2-fvc2002").glob("DB*_B/*.iso"))
        if paths:
            return [read_template(p) for p in paths], f"{len(paths)} ISO/IEC 19794-2 templates of FVC2002 DB1-4 B"
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_synthetic):
        n = int(rng.integers(25, 45))
        out.append(Template(make_minutiae(rng.uniform(30, 370, n), rng.uniform(30, 370, n),
                                          rng.uniform(0, 2 * np.pi, n)), 400, 400, 500))
    return out, f"{n_synthetic} random templates (no FVC data found)"


def copies(templates: list[Any], n: int) -> list[Any]:
    """n distinct Template objects cycling through ``templates`` (each is prepared anew)."""
    from bench.template import Template

    return [Template(t.minutiae.copy(), t.width, t.height, t.dpi) for t in (templates * (n // len(templates) + 1))[:n]]


def measure(matcher: Any, templates: list[Any], gallery_size: int, probes: list[Any], n_pairs: int) -> dict[str, Any]:
    gallery = copies(templates, gallery_size)
    c0 = time.process_time()
    for t in gallery:
        matcher.prepare(t)
    prepare_ms = 1000 * (time.process_time() - c0) / len(gallery)
    for t in probes:
        matcher.prepare(t)
    matcher.compare_many(probes[0], gallery)  # stacks the gallery once, outside the timing
    c0, w0 = time.process_time(), time.perf_counter()
    scores = np.array([matcher.compare_many(p, gallery) for p in probes])
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    n = scores.size
    pairs = [(probes[i % len(probes)], gallery[(7 * i + 3) % len(gallery)]) for i in range(n_pairs)]
    c1, w1 = time.process_time(), time.perf_counter()
    single = np.array([matcher.compare(a, b) for a, b in pairs])
    cpu1, wall1 = time.process_time() - c1, time.perf_counter() - w1
    return {
        "one_to_n_per_cpu_s": n / cpu, "one_to_n_per_wall_s": n / wall,
        "one_to_one_per_cpu_s": len(pairs) / cpu1, "one_to_one_per_wall_s": len(pairs) / wall1,
        "prepare_ms": prepare_ms, "scores": scores, "single": single,
    }


def candidates(make: Any, templates: list[Any], gallery_size: int, probes: list[Any], k: int,
               seed: int) -> dict[str, Any]:
    """A cascade's comparisons: each probe against ``k`` candidates of a prepared gallery,
    through ``compare_subset`` (the gallery stays stacked) and as a list of templates
    (stacked again per probe), alternating probe by probe on two matchers made by ``make``
    (one keeps one stacked gallery); the same scores either way."""
    gallery = copies(templates, gallery_size)
    matcher, other = make(), make()
    for t in gallery + probes:
        matcher.prepare(t)
        other.prepare(t)
    rng = np.random.default_rng(seed)
    picks = [np.sort(rng.choice(gallery_size, k, replace=False)) for _ in probes]
    matcher.compare_subset(probes[0], gallery, picks[0])
    subset_cpu = list_cpu = 0.0
    same = True
    for p, pos in zip(probes, picks):
        c0 = time.process_time()
        a = matcher.compare_subset(p, gallery, pos)
        c1 = time.process_time()
        b = other.compare_many(p, [gallery[i] for i in pos])
        c2 = time.process_time()
        subset_cpu += c1 - c0
        list_cpu += c2 - c1
        same = same and bool(np.array_equal(a, b))
    n = k * len(probes)
    return {"candidates_per_probe": k, "gallery": gallery_size, "probes": len(probes),
            "subset_per_cpu_s": n / subset_cpu, "list_per_cpu_s": n / list_cpu,
            "subset_over_list": list_cpu / subset_cpu, "identical_scores": same}


def first_call_seconds() -> float:
    """Seconds of the compiled kernel's first comparison in a fresh process (compilation,
    or loading from numba's disk cache)."""
    code = ("import time; from extractors.mcc import MccMatcher; m = MccMatcher(kernel='numba'); "
            "t0 = time.perf_counter(); m.warm_up(); print(time.perf_counter() - t0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", type=Path, default=None, help="folder holding templates/iso19794-2-fvc2002")
    ap.add_argument("--ns", type=int, nargs="+", default=[16, 8])
    ap.add_argument("--gallery", type=int, default=1000, help="1:N gallery size (distinct template objects)")
    ap.add_argument("--probes", type=int, default=20)
    ap.add_argument("--pairs", type=int, default=2000, help="1:1 comparisons timed")
    ap.add_argument("--kernels", nargs="+", default=["numpy", "numba", "torch-cpu", "torch-cuda"])
    ap.add_argument("--numpy-probes", type=int, default=5, help="probes for the (slow) numpy reference")
    ap.add_argument("--reference", default="numpy",
                    help="the kernel ratios and score differences are measured against (numba for galleries "
                         "too large for the numpy reference's preparation)")
    ap.add_argument("--json", type=Path, help="also write every number here")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--candidates", type=int, default=50,
                    help="a cascade's candidates per probe for the compare_subset measurement (compiled kernel)")
    args = ap.parse_args(argv)

    from extractors.mcc import MccMatcher, compiled, gpu

    templates, described = load_templates(args.data_root, 320, args.seed)
    print(f"templates: {described}; gallery {args.gallery}; one thread", flush=True)
    all_probes = templates[:: max(1, len(templates) // args.probes)][: args.probes]
    report: dict[str, Any] = {
        "templates": described, "gallery": args.gallery, "machine": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(), "numba": getattr(compiled.numba, "__version__", None),
        "torch": getattr(gpu.torch, "__version__", None) if gpu.AVAILABLE else None, "reference": args.reference,
        "devices": [gpu.describe_device("cuda")] if "torch-cuda" in args.kernels and gpu.cuda_available() else [],
        "results": {},
    }
    if compiled.AVAILABLE:
        report["first_call_s"] = first_call_seconds()
        print(f"compiled kernel, first call in a fresh process: {report['first_call_s']:.2f} s")
    for ns in args.ns:
        rows: dict[str, dict[str, Any]] = {}
        for kernel in args.kernels:
            params: dict[str, Any] = {"ns": ns}
            if kernel == "numba" and not compiled.AVAILABLE:
                continue
            if kernel.startswith("torch"):
                device = kernel.split("-", 1)[1]
                if not gpu.AVAILABLE or (device == "cuda" and not gpu.cuda_available()):
                    continue
                params.update(kernel="torch", device=device)
            else:
                params["kernel"] = kernel
            m = MccMatcher(**params)
            m.warm_up()
            slow = kernel == "numpy" or kernel == "torch-cpu"
            probes = all_probes[: args.numpy_probes if slow else args.probes]
            pairs = min(args.pairs, 300) if slow or kernel.startswith("torch") else args.pairs
            rows[kernel] = measure(m, templates, args.gallery, probes, pairs)
            print(f"ns={ns} {kernel:>10}: 1:N {rows[kernel]['one_to_n_per_cpu_s']:>10,.0f}/CPU-s "
                  f"({rows[kernel]['one_to_n_per_wall_s']:,.0f}/wall-s)  1:1 {rows[kernel]['one_to_one_per_cpu_s']:>8,.0f}/CPU-s"
                  f"  prepare {rows[kernel]['prepare_ms']:.2f} ms", flush=True)
        name = args.reference
        ref = rows.get(name)
        for kernel, r in rows.items():
            if ref is not None:
                k = min(len(r["scores"]), len(ref["scores"]))
                r["max_score_difference"] = float(np.abs(r["scores"][:k] - ref["scores"][:k]).max())
                # per CPU-second on one thread; per wall-second too, the rate that counts for a GPU
                for key in ("one_to_n_per_cpu_s", "one_to_one_per_cpu_s", "one_to_n_per_wall_s"):
                    r[key.replace("_per_cpu_s", f"_ratio_to_{name}").replace("_per_wall_s", f"_wall_ratio_to_{name}")] \
                        = r[key] / ref[key]
                r[f"prepare_ratio_to_{name}"] = ref["prepare_ms"] / r["prepare_ms"]
        for r in rows.values():
            del r["scores"], r["single"]
        report["results"][f"ns{ns}"] = rows
        if "numba" in rows:
            cand = candidates(lambda: MccMatcher(ns=ns, kernel="numba"), templates, args.gallery, all_probes * 5,
                              args.candidates, args.seed)
            report.setdefault("cascade", {})[f"ns{ns}"] = cand
            print(f"ns={ns} numba, {cand['candidates_per_probe']} candidates of {cand['gallery']}: compare_subset "
                  f"{cand['subset_per_cpu_s']:,.0f}/CPU-s, as a list {cand['list_per_cpu_s']:,.0f}/CPU-s "
                  f"({cand['subset_over_list']:.2f}x); identical scores: {cand['identical_scores']}", flush=True)
        if ref is not None:
            for kernel, r in rows.items():
                if kernel != name:
                    print(f"ns={ns} {kernel}: {r[f'one_to_n_ratio_to_{name}']:.1f}x {name} 1:N "
                          f"({r[f'one_to_n_wall_ratio_to_{name}']:.1f}x per wall-second), "
                          f"{r[f'one_to_one_ratio_to_{name}']:.1f}x 1:1, prepare "
                          f"{r[f'prepare_ratio_to_{name}']:.1f}x faster; "
                          f"largest score difference {r['max_score_difference']:.1e}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
