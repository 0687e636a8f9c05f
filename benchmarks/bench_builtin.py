"""Accuracy and speed of the built-in algorithms on the FVC2000/FVC2002 B sets.

Compares three systems on each set, under the FVC protocol (280 genuine / 45 impostor
comparisons) and the all-pairs protocol (280 / 2,880):

* ``classic+MCC``: the classic extractor with the MCC matcher;
* ``NBIS``: MINDTCT with BOZORTH3 (the ``mindtct`` and ``bozorth3`` plugins);
* ``MINDTCT+MCC``: MINDTCT minutiae with the MCC matcher.

Then it measures speed on one core: extraction time per image (median over the
500 dpi images) and MCC comparisons per second, 1:1 and 1:N (one prepared probe against
a gallery of about 1,000 templates). Failures to enrol count as FVC "ghost" templates.

Run::

    python -m benchmarks.bench_builtin --data-root ../shared/datasets

Thread pools are limited to one thread (``--threads``) before numpy is imported, so the
timings are single-core.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("benchmarks.bench_builtin")

DATASETS = (
    "fvc2000-db1-b", "fvc2000-db2-b", "fvc2000-db3-b", "fvc2000-db4-b",
    "fvc2002-db1-b", "fvc2002-db2-b", "fvc2002-db3-b", "fvc2002-db4-b",
)
PROTOCOLS = ("fvc", "all-pairs")
SYSTEMS = (
    # name, extractor, matcher
    ("classic+MCC", "classic", "mcc"),
    ("NBIS", "mindtct", "bozorth3"),
    ("MINDTCT+MCC", "mindtct", "mcc"),
)


def limit_threads(n: int) -> None:
    """Limit BLAS/OpenMP pools; effective only before numpy is first imported."""
    if "numpy" in sys.modules:
        log.warning("numpy is already imported: thread limits may not apply")
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)


@dataclass
class Extraction:
    templates: dict[str, Any]  # sample id -> Template, or None after a failure to enrol
    seconds: dict[str, float]  # CPU time of this process per extraction
    failures: dict[str, str] = field(default_factory=dict)


def extract_dataset(extractor: Any, dataset: Any) -> Extraction:
    """Templates of every sample, with the CPU time each extraction took.

    CPU time (``time.process_time``) rather than wall time: with one thread it is the
    time on one core, and it does not count the time other processes held the CPU.
    """
    from bench.plugins import FailureToEnrol

    out = Extraction({}, {})
    for s in dataset.samples:
        image = dataset.read_image(s)
        t0 = time.process_time()
        try:
            out.templates[s.id] = extractor.extract(image, s.dpi)
        except FailureToEnrol as exc:
            out.templates[s.id] = None
            out.failures[s.id] = str(exc)
        out.seconds[s.id] = time.process_time() - t0
    return out


def score_pairs(matcher: Any, templates: dict[str, Any], pairs: Any) -> dict[str, Any]:
    """Scores of a pair list, one probe against its references at a time."""
    import numpy as np

    by_probe: dict[str, list[int]] = {}
    for i, p in enumerate(pairs.pairs):
        by_probe.setdefault(p.probe, []).append(i)
    scores = np.zeros(len(pairs.pairs))
    status = np.array(["ok"] * len(pairs.pairs), dtype=object)
    many = getattr(matcher, "compare_many", None)
    for probe, idx in by_probe.items():
        refs = [pairs.pairs[i].reference for i in idx]
        ghost = [templates[probe] is None or templates[r] is None for r in refs]
        live = [(i, r) for i, r, g in zip(idx, refs, ghost) if not g]
        for i, g in zip(idx, ghost):
            if g:
                status[i] = "enrol_failed"
        if not live:
            continue
        gallery = [templates[r] for _, r in live]
        if many is not None:
            values = many(templates[probe], gallery)
        else:
            values = [matcher.compare(templates[probe], t) for t in gallery]
        for (i, _), v in zip(live, values):
            scores[i] = v
    genuine = np.array([p.genuine for p in pairs.pairs])
    return {"scores": scores, "genuine": genuine, "status": status.astype(str)}


def equal_error_rate(result: dict[str, Any], higher_is_better: bool) -> float:
    """EER under the FVC rules (bench.metrics), ghost templates included."""
    from bench.metrics import compute_metrics

    m = compute_metrics(result["scores"], result["genuine"], result["status"], higher_is_better=higher_is_better)
    return float(m["eer"]) if m["eer"] is not None else float("nan")


def extraction_speed(seconds: dict[str, dict[str, float]], dpis: dict[str, float]) -> dict[str, float]:
    import numpy as np

    at_500 = [t for name, times in seconds.items() if dpis[name] == 500 for t in times.values()]
    every = [t for times in seconds.values() for t in times.values()]
    return {"median_ms_500dpi": 1000 * float(np.median(at_500)) if at_500 else float("nan"),
            "median_ms_all": 1000 * float(np.median(every)) if every else float("nan"),
            "mean_ms_all": 1000 * float(np.mean(every)) if every else float("nan")}


def matching_speed(matcher: Any, templates: list[Any], gallery_size: int, n_probes: int) -> dict[str, float]:
    """Comparisons per CPU second, 1:N (prepared gallery) and 1:1 (prepared templates).

    The 1:N figure includes preparing each probe once (its cylinders); the gallery is
    prepared and stacked before timing, as an identification system would keep it.
    Wall-clock rates are reported beside the CPU-time ones.
    """
    from bench.template import Template

    live = [t for t in templates if t is not None]
    # Distinct Template objects (copies), so the gallery is as large as asked.
    gallery = [Template(t.minutiae.copy(), t.width, t.height, t.dpi) for t in
               (live * (gallery_size // max(len(live), 1) + 1))[:gallery_size]]
    probes = live[:n_probes]
    t0 = time.process_time()
    for t in gallery:
        matcher.prepare(t)
    prepare_ms = 1000 * (time.process_time() - t0) / max(len(gallery), 1)
    matcher.compare_many(probes[0], gallery)  # stacks the gallery once
    c0, w0 = time.process_time(), time.perf_counter()
    for p in probes:
        matcher.compare_many(p, gallery)
    n = len(probes) * len(gallery)
    one_to_n, one_to_n_wall = n / (time.process_time() - c0), n / (time.perf_counter() - w0)
    pairs = [(probes[i % len(probes)], gallery[(7 * i) % len(gallery)]) for i in range(2000)]
    for a, b in pairs:
        matcher.prepare(a), matcher.prepare(b)
    c0, w0 = time.process_time(), time.perf_counter()
    for a, b in pairs:
        matcher.compare(a, b)
    one_to_one, one_to_one_wall = len(pairs) / (time.process_time() - c0), len(pairs) / (time.perf_counter() - w0)
    return {"one_to_n_per_s": one_to_n, "one_to_n_per_s_wall": one_to_n_wall, "one_to_one_per_s": one_to_one,
            "one_to_one_per_s_wall": one_to_one_wall, "prepare_ms": prepare_ms,
            "gallery": len(gallery), "probes": len(probes)}


def profile_matching(matcher: Any, templates: list[Any], gallery_size: int, top: int = 12) -> str:
    """cProfile of 1:N matching, the functions with the most own time."""
    import cProfile
    import io
    import pstats

    from bench.template import Template

    live = [t for t in templates if t is not None]
    gallery = [Template(t.minutiae.copy(), t.width, t.height, t.dpi) for t in
               (live * (gallery_size // max(len(live), 1) + 1))[:gallery_size]]
    matcher.compare_many(live[0], gallery)
    prof = cProfile.Profile(time.process_time)  # CPU time: robust to other processes
    prof.enable()
    for p in live[:10]:
        matcher.compare_many(p, gallery)
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
    return buf.getvalue()


def profile_extraction(extractor: Any, images: list[tuple[Any, float]], top: int = 12) -> str:
    import cProfile
    import io
    import pstats

    prof = cProfile.Profile(time.process_time)  # CPU time: robust to other processes
    prof.enable()
    for image, dpi in images:
        try:
            extractor.extract(image, dpi)
        except Exception:  # FailureToEnrol: still a valid profile
            pass
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
    return buf.getvalue()


def format_table(eers: dict[str, dict[str, dict[str, float]]], names: list[str], systems: list[str]) -> str:
    """EER (%) per dataset, protocol and system, with the mean of each column."""
    cols = [(proto, sys_) for proto in PROTOCOLS for sys_ in systems]
    head = ["dataset"] + [f"{proto}:{s}" for proto, s in cols]
    rows = []
    for name in names:
        rows.append([name] + [f"{100 * eers[name][proto].get(s, float('nan')):.2f}" for proto, s in cols])
    import numpy as np

    means = [np.nanmean([eers[n][proto].get(s, float("nan")) for n in names]) for proto, s in cols]
    rows.append(["mean"] + [f"{100 * m:.2f}" for m in means])
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in [head] + rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", required=True, help="folder holding fvc2000/ and fvc2002/")
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS), help="registered dataset names")
    ap.add_argument("--systems", nargs="+", default=[s[0] for s in SYSTEMS],
                    choices=[s[0] for s in SYSTEMS])
    ap.add_argument("--mcc-ns", type=int, default=None, help="MCC spatial cells per side (default: the matcher's)")
    ap.add_argument("--mcc-kernel", default=None, choices=["auto", "numba", "numpy"],
                    help="MCC implementation (default: the matcher's, 'auto')")
    ap.add_argument("--gallery-size", type=int, default=1000, help="1:N gallery size for the speed test")
    ap.add_argument("--speed-ns", type=int, nargs="*", default=[8],
                    help="also time MCC with these numbers of spatial cells (on classic templates)")
    ap.add_argument("--threads", type=int, default=1, help="BLAS/OpenCV threads (1 = single-core timings)")
    ap.add_argument("--profile", action="store_true", help="print cProfile summaries of extraction and matching")
    ap.add_argument("--json", help="also write every number to this JSON file")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    limit_threads(args.threads)

    import cv2

    cv2.setNumThreads(args.threads)
    from bench import protocols
    from bench.plugins import registry
    from bench.datasets.registry import open_dataset

    mcc_params: dict[str, Any] = {} if args.mcc_ns is None else {"ns": args.mcc_ns}
    if args.mcc_kernel is not None:
        mcc_params["kernel"] = args.mcc_kernel
    wanted = [s for s in SYSTEMS if s[0] in args.systems]
    extractors: dict[str, Any] = {}
    matchers: dict[str, Any] = {}
    unavailable: dict[str, str] = {}
    for name, ex_name, mt_name in wanted:
        try:
            if ex_name not in extractors:
                extractors[ex_name] = registry.create("extractor", ex_name)
            if mt_name not in matchers:
                matchers[mt_name] = registry.create("matcher", mt_name, mcc_params if mt_name == "mcc" else None)
        except registry.PluginError as exc:
            unavailable[name] = str(exc)
            log.warning("%s skipped: %s", name, exc)
    systems = [s for s in wanted if s[0] not in unavailable]

    eers: dict[str, dict[str, dict[str, float]]] = {}
    ext_seconds: dict[str, dict[str, dict[str, float]]] = {e: {} for e in extractors}
    fte: dict[str, dict[str, int]] = {e: {} for e in extractors}
    all_templates: dict[str, list[Any]] = {e: [] for e in extractors}
    dpis: dict[str, float] = {}
    sample_images: list[tuple[Any, float]] = []
    for ds_name in args.datasets:
        ds = open_dataset(ds_name, data_root=args.data_root, validate="header")
        dpis[ds_name] = ds.info.dpi
        sample_images += [(ds.read_image(s), s.dpi) for s in ds.samples[:2]]
        extracted = {}
        for ex_name, ex in extractors.items():
            t0 = time.perf_counter()
            extracted[ex_name] = extract_dataset(ex, ds)
            ext_seconds[ex_name][ds_name] = extracted[ex_name].seconds
            fte[ex_name][ds_name] = len(extracted[ex_name].failures)
            all_templates[ex_name] += list(extracted[ex_name].templates.values())
            log.info("%s: %s extracted in %.1f s (%d failures to enrol)", ds_name, ex_name,
                     time.perf_counter() - t0, len(extracted[ex_name].failures))
        eers[ds_name] = {}
        for proto in PROTOCOLS:
            pairs = protocols.build(proto, ds)
            eers[ds_name][proto] = {}
            for sys_name, ex_name, mt_name in systems:
                res = score_pairs(matchers[mt_name], extracted[ex_name].templates, pairs)
                eers[ds_name][proto][sys_name] = equal_error_rate(res, matchers[mt_name].higher_is_better)
        log.info("%s: %s", ds_name, {p: {s: round(100 * v, 2) for s, v in d.items()} for p, d in eers[ds_name].items()})

    names = list(eers)
    sys_names = [s[0] for s in systems]
    print("\nEER (%) per set; FVC protocol = 280 genuine / 45 impostor, all-pairs = 280 / 2,880\n")
    print(format_table(eers, names, sys_names))
    for ex_name in extractors:
        n_fte = sum(fte[ex_name].values())
        print(f"\nfailures to enrol, {ex_name}: {n_fte} of {len(all_templates[ex_name])}")

    report: dict[str, Any] = {"eer": eers, "fte": fte, "unavailable": unavailable, "speed": {}}
    print("\nSpeed (CPU time, single thread)" if args.threads == 1 else f"\nSpeed (CPU time, {args.threads} threads)")
    for ex_name in extractors:
        sp = extraction_speed(ext_seconds[ex_name], dpis)
        report["speed"][f"extract:{ex_name}"] = sp
        print(f"  extraction {ex_name}: median {sp['median_ms_500dpi']:.1f} ms per 500 dpi image "
              f"(all images: median {sp['median_ms_all']:.1f} ms, mean {sp['mean_ms_all']:.1f} ms)")
    if "mcc" in matchers:
        for ex_name in extractors:
            if any(s[1] == ex_name and s[2] == "mcc" for s in systems):
                sp = matching_speed(matchers["mcc"], all_templates[ex_name], args.gallery_size, 20)
                report["speed"][f"mcc:{ex_name}"] = sp
                print(f"  MCC on {ex_name} templates: 1:N {sp['one_to_n_per_s']:,.0f} comparisons/s "
                      f"(wall {sp['one_to_n_per_s_wall']:,.0f}; gallery {sp['gallery']}), "
                      f"1:1 {sp['one_to_one_per_s']:,.0f} comparisons/s (wall {sp['one_to_one_per_s_wall']:,.0f}), "
                      f"preparation {sp['prepare_ms']:.2f} ms per template")
    if "mcc" in matchers and "classic" in extractors:
        for ns in args.speed_ns:
            if ns == matchers["mcc"].ns:
                continue
            sp = matching_speed(registry.create("matcher", "mcc", {**mcc_params, "ns": ns}), all_templates["classic"],
                                args.gallery_size, 20)
            report["speed"][f"mcc-ns{ns}:classic"] = sp
            print(f"  MCC with ns={ns} on classic templates: 1:N {sp['one_to_n_per_s']:,.0f} comparisons/s "
                  f"(wall {sp['one_to_n_per_s_wall']:,.0f}), 1:1 {sp['one_to_one_per_s']:,.0f} comparisons/s, "
                  f"preparation {sp['prepare_ms']:.2f} ms per template")
    if args.profile:
        if "classic" in extractors:
            print("\nProfile: classic extraction\n" + profile_extraction(extractors["classic"], sample_images))
        if "mcc" in matchers and "classic" in extractors:
            print("\nProfile: MCC 1:N on classic templates\n"
                  + profile_matching(matchers["mcc"], all_templates["classic"], args.gallery_size))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2, default=float)
    return 0


if __name__ == "__main__":
    sys.exit(main())
