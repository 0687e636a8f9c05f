"""Stage-by-stage accuracy of the classic extractor against synthetic ground truth.

Synthetic impressions (``bench.synthetic``) come with what each stage should find: the
area the finger touched, the ridge orientation and period of the master print, and the
minutiae. For each difficulty this script renders impressions in memory (fixed seed) and
measures, per stage of :meth:`ClassicExtractor.run_pipeline`:

* segmentation: precision, recall and IoU of the foreground mask against the touched area;
* orientation: mean and 90th-percentile error (degrees) of the orientation field on the
  true foreground, against the master's orientation carried through the impression's
  mapping;
* frequency: relative error of the print's ridge period against the master's;
* minutiae: precision, recall, F1 and the direction error of paired minutiae
  (``bench.synthetic.accuracy``, 0.45 mm pairing tolerance), found minutiae outside the
  touched area ignored.

The ``wide`` variant draws the same fingers on a large canvas (448 x 478, the size of the
FVC2000 DB3 images) at the hard difficulty, so most of the image is background;
``wide-dry`` adds the hardest difficulty (light, dry, broken ridges) and 1.5 times the
noise.

Run::

    python -m benchmarks.extractor_stages --fingers 10 --impressions 4
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

import numpy as np

from bench.plugins import FailureToEnrol
from bench.synthetic.accuracy import aggregate
from bench.synthetic.generate import make_config, make_finger
from bench.synthetic.impression import Mapping
from bench.template import Template, make_minutiae
from extractors.classic.minutiae import to_iso_angle

log = logging.getLogger("benchmarks.extractor_stages")

VARIANTS: dict[str, dict[str, Any]] = {
    "easy": {"difficulty": "easy"},
    "default": {"difficulty": "default"},
    "hard": {"difficulty": "hard"},
    "wide": {"difficulty": "hard", "width": 448, "height": 478},
    "wide-dry": {"difficulty": 1.0, "noise": 1.5, "width": 448, "height": 478},
}


def true_orientation(master: Any, imp: Any, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Ridge orientation in image coordinates (mod pi, y down) at image pixels (xs, ys)."""
    mapping = Mapping(master, imp.params)
    mx, my = mapping.master_from_image(xs.astype(np.float64), ys.astype(np.float64))
    h, w = master.theta.shape
    mi = np.clip(np.round(my).astype(np.intp), 0, h - 1)
    mj = np.clip(np.round(mx).astype(np.intp), 0, w - 1)
    iso = mapping.image_directions(mx, my, master.theta[mi, mj])  # counter-clockwise, y up
    return np.mod(-iso, np.pi)


def true_period(master: Any, imp: Any, ys: np.ndarray, xs: np.ndarray) -> float:
    mapping = Mapping(master, imp.params)
    mx, my = mapping.master_from_image(xs.astype(np.float64), ys.astype(np.float64))
    h, w = master.period.shape
    mi = np.clip(np.round(my).astype(np.intp), 0, h - 1)
    mj = np.clip(np.round(mx).astype(np.intp), 0, w - 1)
    return float(np.median(master.period[mi, mj]))


def measure(extractor: Any, variant: dict[str, Any], fingers: int, impressions: int, seed: int) -> dict[str, Any]:
    config = make_config(fingers=fingers, impressions=impressions, seed=seed,
                         **{k: v for k, v in variant.items()})
    seg_tp = seg_fp = seg_fn = 0
    ori_err: list[np.ndarray] = []
    per_err: list[float] = []
    pairs = []
    failures = 0
    for finger in range(1, fingers + 1):
        master, imps = make_finger(config, finger)
        for imp in imps:
            truth = Template(imp.minutiae, config.width, config.height, config.dpi)
            try:
                steps = extractor.run_pipeline(imp.image, config.dpi)
            except FailureToEnrol:
                failures += 1
                pairs.append((Template(imp.minutiae[:0], config.width, config.height, config.dpi), truth, imp.visible))
                continue
            mask, visible = steps.mask, imp.visible
            seg_tp += int(np.sum(mask & visible))
            seg_fp += int(np.sum(mask & ~visible))
            seg_fn += int(np.sum(~mask & visible))
            ys, xs = np.nonzero(visible)
            step = max(1, ys.size // 2000)
            ys, xs = ys[::step], xs[::step]
            if ys.size:
                d = np.abs(np.mod(steps.orientation[ys, xs] - true_orientation(master, imp, ys, xs), np.pi))
                ori_err.append(np.degrees(np.minimum(d, np.pi - d)))
                per_err.append(abs(1.0 / steps.frequency / true_period(master, imp, ys, xs) - 1.0))
            c = steps.candidates
            found = make_minutiae(c.x, c.y, to_iso_angle(c.angle), c.kind, np.round(c.quality))
            pairs.append((Template(found, config.width, config.height, config.dpi), truth, visible))
    acc = aggregate(pairs)
    ori = np.concatenate(ori_err) if ori_err else np.zeros(0)
    return {
        "images": fingers * impressions,
        "failures_to_enrol": failures,
        "segmentation": {
            "precision": seg_tp / max(seg_tp + seg_fp, 1),
            "recall": seg_tp / max(seg_tp + seg_fn, 1),
            "iou": seg_tp / max(seg_tp + seg_fp + seg_fn, 1),
        },
        "orientation_error_deg": {"mean": float(ori.mean()) if ori.size else None,
                                  "p90": float(np.percentile(ori, 90)) if ori.size else None},
        "period_relative_error": {"median": float(np.median(per_err)) if per_err else None,
                                  "max": float(np.max(per_err)) if per_err else None},
        "minutiae": {"precision": acc.precision, "recall": acc.recall, "f1": acc.f1,
                     "mean_angle_error_deg": acc.mean_angle_error_deg,
                     "angle_agreement": acc.angle_agreement},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fingers", type=int, default=10)
    ap.add_argument("--impressions", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                    help="extractor parameter (repeatable)")
    ap.add_argument("--json", help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from bench.plugins import registry

    params = {k: json.loads(v) for k, v in (p.split("=", 1) for p in args.param)}
    extractor = registry.create("extractor", "classic", params)
    out: dict[str, Any] = {"extractor_version": extractor.version, "params": params, "seed": args.seed,
                           "fingers": args.fingers, "impressions": args.impressions, "variants": {}}
    for name in args.variants:
        r = measure(extractor, VARIANTS[name], args.fingers, args.impressions, args.seed)
        out["variants"][name] = r
        m, s, o = r["minutiae"], r["segmentation"], r["orientation_error_deg"]
        print(f"{name:8s} seg P/R/IoU {s['precision']:.3f}/{s['recall']:.3f}/{s['iou']:.3f}  "
              f"orientation err mean {o['mean']:.1f} p90 {o['p90']:.1f} deg  "
              f"period err median {r['period_relative_error']['median']:.3f}  "
              f"minutiae P/R/F1 {m['precision']:.3f}/{m['recall']:.3f}/{m['f1']:.3f} "
              f"angle err {m['mean_angle_error_deg']:.1f} deg  FTE {r['failures_to_enrol']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1, default=float)
    return 0


if __name__ == "__main__":
    sys.exit(main())
