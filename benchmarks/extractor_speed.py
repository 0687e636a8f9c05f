"""Extraction time of the classic extractor against an earlier version, side by side.

Both versions run in this one process on one thread, image by image in alternation
(this checkout's, then the baseline's, on the same image), so load from other processes
affects both alike; the figure to quote is the ratio of the medians. Times are CPU times
(``time.process_time``) of ``extract`` on the 500 dpi B sets.

The baseline is another checkout of the project (for example ``git worktree add
../baseline <commit>``), given with ``--baseline-root``.

Run::

    python -m benchmarks.extractor_speed --data-root ../shared/datasets --baseline-root ../baseline
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_builtin import DATASETS, limit_threads

ROOT = Path(__file__).resolve().parents[1]  # the project

log = logging.getLogger("benchmarks.extractor_speed")


def load_classic(root: Path) -> type:
    """The ``ClassicExtractor`` class of the checkout at ``root``, imported under its
    own package names (the ``extractors`` modules are swapped in and out of sys.modules)."""
    saved = {k: v for k, v in sys.modules.items() if k == "extractors" or k.startswith("extractors.")}
    for k in saved:
        del sys.modules[k]
    sys.path.insert(0, str(root))
    try:
        cls = importlib.import_module("extractors.classic.extractor").ClassicExtractor
    finally:
        sys.path.remove(str(root))
        for k in [k for k in sys.modules if k == "extractors" or k.startswith("extractors.")]:
            del sys.modules[k]
        sys.modules.update(saved)
    return cls


def time_once(extractor: Any, image: Any, dpi: float) -> float:
    from bench.plugins import FailureToEnrol

    t0 = time.process_time()
    try:
        extractor.extract(image, dpi)
    except FailureToEnrol:
        pass
    return time.process_time() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", required=True)
    ap.add_argument("--baseline-root", required=True, help="checkout of the version to compare against")
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS))
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--json", help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    limit_threads(1)
    import cv2
    import numpy as np

    cv2.setNumThreads(1)
    from bench.datasets.registry import open_dataset

    current_cls = load_classic(ROOT)
    baseline_cls = load_classic(Path(args.baseline_root).resolve())
    current, baseline = current_cls(), baseline_cls()
    times: dict[str, list[float]] = {"current": [], "baseline": []}
    for name in args.datasets:
        ds = open_dataset(name, data_root=args.data_root, validate="header")
        if ds.info.dpi != 500:
            continue
        for s in ds.samples:
            image = ds.read_image(s)
            for _ in range(args.repeats):
                times["current"].append(time_once(current, image, s.dpi))
                times["baseline"].append(time_once(baseline, image, s.dpi))
    # The first calls pay for imports and filter banks: leave out the first set's warm-up.
    skip = min(5, len(times["current"]) // 10)
    med = {k: 1000 * float(np.median(v[skip:])) for k, v in times.items()}
    mean = {k: 1000 * float(np.mean(v[skip:])) for k, v in times.items()}
    out = {"current_version": current.version, "baseline_version": baseline.version,
           "images": len(times["current"]) - skip, "median_ms": med, "mean_ms": mean,
           "ratio_of_medians": med["current"] / med["baseline"], "ratio_of_means": mean["current"] / mean["baseline"]}
    print(f"classic {current.version}: median {med['current']:.1f} ms, mean {mean['current']:.1f} ms per 500 dpi image; "
          f"classic {baseline.version}: median {med['baseline']:.1f} ms, mean {mean['baseline']:.1f} ms; "
          f"ratio of medians {out['ratio_of_medians']:.3f}, of means {out['ratio_of_means']:.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
