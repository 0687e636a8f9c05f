"""``fingerbench synth``: write a synthetic fingerprint set with ground truth, FVC layout."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from bench.cli.helpstyle import epilog

log = logging.getLogger("fingerbench")


EXAMPLES = [
    "fingerbench synth sets/hard --fingers 100 --impressions 8 --difficulty hard --seed 7",
    "fingerbench run -d synthetic --dataset-path sets/hard -e mindtct -m bozorth3",
]


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "synth", help="generate a synthetic fingerprint set with ground-truth minutiae",
        description="Generate synthetic fingerprints (SFinGe-like: orientation model, Gabor ridge "
                    "growth, elastic distortion, partial contact, pressure, noise) into OUT in the FVC "
                    "layout <finger>_<impression>.png, with ground-truth minutiae (JSON and ISO/IEC "
                    "19794-2) under OUT/groundtruth. The same seed gives bit-identical images; an "
                    "interrupted generation is completed by running the same command again. Open the "
                    "set with: fingerbench run -d synthetic --dataset-path OUT ...",
        epilog=epilog(EXAMPLES),
    )
    p.add_argument("out", type=Path, help="output folder")
    p.add_argument("--fingers", type=int, default=10, help="number of synthetic fingers")
    p.add_argument("--impressions", type=int, default=8, help="impressions per finger")
    p.add_argument("--width", type=int, default=288, help="image width in pixels")
    p.add_argument("--height", type=int, default=384, help="image height in pixels")
    p.add_argument("--dpi", type=float, default=500.0, help="resolution")
    p.add_argument("--difficulty", default="default",
                   help="easy, default, hard, or a number from 0 (clean) to 1 (very hard)")
    p.add_argument("--noise", type=float, default=1.0, help="multiplier of sensor noise and background")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--jobs", "-j", type=int, default=None, help="worker processes (default: all cores)")
    p.add_argument("--overwrite", action="store_true", help="replace a set made with other parameters")
    return p


def run(args: argparse.Namespace) -> int:
    from bench.synthetic import generate_dataset

    try:
        difficulty: float | str = float(args.difficulty)
    except ValueError:
        difficulty = args.difficulty
    try:
        report = generate_dataset(
            args.out, fingers=args.fingers, impressions=args.impressions, width=args.width,
            height=args.height, dpi=args.dpi, difficulty=difficulty, noise=args.noise, seed=args.seed,
            jobs=args.jobs, overwrite=args.overwrite,
        )
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    print(f"{report.root}: {report.config.fingers} fingers x {report.config.impressions} impressions "
          f"({report.generated_fingers} fingers generated, {report.reused_fingers} reused, "
          f"{report.images_per_second:.1f} images/s)")
    return 0
