"""Make every figure of docs/img again, from the data and code of this checkout.

Run from the project root::

    python -m benchmarks.figures --data-root ../shared/datasets            # all figures
    python -m benchmarks.figures --data-root ../shared/datasets report     # one of them

Figures (``--out``, default ``docs/img``):

* ``report.png``: the first 2,000 x 1,280 pixels of the report of NBIS (``mindtct`` +
  ``bozorth3``) and ``classic`` + ``mcc`` on the eight FVC2000/FVC2002 B sets under the
  FVC protocol, as headless Chromium shows it (runs in ``--runs``, default
  ``runs/docs-figures``; the report itself next to them). Needs Chromium
  (``chromium`` on the PATH, or ``FINGERBENCH_CHROMIUM``).
* ``synthetic_vs_fvc2002db4.png``: the first impressions of the embedded synthetic
  generator's fingers 1-4 above FVC2002 DB4 B fingers 101-104
  (:func:`bench.synthetic.figure.comparison_figure`).
* ``identification_scale.png``: searches/s and comparisons/s against gallery size, drawn
  from the measurements in ``docs/data/bench_1n.json`` (``benchmarks.bench_1n``'s plot).
* ``synthetic_calibration.png``: MCC genuine and impostor score distributions of the FVC
  B sets and of the synthetic minutiae model's versions, drawn from
  ``docs/data/calibration.json`` (``benchmarks.calibration``'s plot).
* ``indexing.png``: the 1:N accuracy / speed trade-off (Pareto chart) and the indexes' hit
  rates, drawn from ``docs/data/indexing.json`` (``benchmarks.indexing``'s plot).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

log = logging.getLogger("benchmarks.figures")

ROOT = Path(__file__).resolve().parent.parent
#: The B sets of the report figure, as registered dataset names.
REPORT_DATASETS = tuple(f"fvc{year}-db{db}-b" for year in (2000, 2002) for db in (1, 2, 3, 4))
#: The (extractor, matcher) pairs of the report figure.
REPORT_PAIRS = (("mindtct", "bozorth3"), ("classic", "mcc"))
SCREEN = (1280, 2000)


def chromium() -> str | None:
    """The Chromium program: ``FINGERBENCH_CHROMIUM`` or the first one on the PATH."""
    env = os.environ.get("FINGERBENCH_CHROMIUM")
    if env:
        return env
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(page: Path, out: Path, size: tuple[int, int] = SCREEN) -> Path:
    """A PNG of ``page`` as headless Chromium shows it in a window of ``size`` (width, height)."""
    browser = chromium()
    if browser is None:
        raise SystemExit("no Chromium found: install it, or set FINGERBENCH_CHROMIUM to its path")
    with tempfile.TemporaryDirectory() as profile:
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", f"--screenshot={out.resolve()}", f"--window-size={size[0]},{size[1]}",
               page.resolve().as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if not out.is_file():
        raise SystemExit(f"Chromium made no screenshot: {proc.stderr[-2000:]}")
    return out


def report_figure(data_root: Path, out: Path, runs: Path) -> Path:
    """Run the report's pairs on the B sets (finished runs are reused), report, screenshot."""
    from bench.cli import main
    from bench.report import write_report

    dirs = []
    for dataset in REPORT_DATASETS:
        for extractor, matcher in REPORT_PAIRS:
            log.info("run %s + %s on %s", extractor, matcher, dataset)
            code = main(["run", "-q", "-d", dataset, "--data-root", str(data_root), "-e", extractor,
                         "-m", matcher, "-o", str(runs)])
            if code != 0:
                raise SystemExit(f"fingerbench run {dataset} {extractor}+{matcher} failed (exit {code})")
            dirs.append(runs / dataset / "fvc" / f"{extractor}+{matcher}")
    html = write_report(dirs, runs / "report")
    return screenshot(html, out / "report.png")


def synthetic_figure(data_root: Path, out: Path) -> Path:
    from bench.synthetic.figure import comparison_figure

    real = [data_root / "fvc2002" / "DB4_B" / f"{finger}_1.tif" for finger in (101, 102, 103, 104)]
    missing = [str(p) for p in real if not p.is_file()]
    if missing:
        raise SystemExit(f"FVC2002 DB4 B images not found: {missing}")
    return comparison_figure(out / "synthetic_vs_fvc2002db4.png", real)


def calibration_figure(out: Path) -> Path:
    from benchmarks.calibration import figure

    return figure(json.loads((ROOT / "docs" / "data" / "calibration.json").read_text()),
                  out / "synthetic_calibration.png")


def identification_figure(out: Path) -> Path:
    from benchmarks.bench_1n import _plot

    rows = json.loads((ROOT / "docs" / "data" / "bench_1n.json").read_text())["runs"]
    path = out / "identification_scale.png"
    _plot(rows, path)
    return path


def indexing_figure(out: Path) -> Path:
    from benchmarks.indexing import _plot

    rows = json.loads((ROOT / "docs" / "data" / "indexing.json").read_text())["rows"]
    path = out / "indexing.png"
    _plot(rows, path)
    return path


FIGURES = ("report", "synthetic", "identification", "calibration", "indexing")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("figures", nargs="*", choices=[[], *FIGURES], default=[],
                   help=f"which figures to make (default: all of {', '.join(FIGURES)})")
    p.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "datasets",
                   help="folder holding fvc2000/ and fvc2002/ (the B sets)")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "img", help="where the figures go")
    p.add_argument("--runs", type=Path, default=Path("runs/docs-figures"), help="run folder of the report figure")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    wanted = args.figures or list(FIGURES)
    made = []
    if "calibration" in wanted:
        made.append(calibration_figure(args.out))
    if "identification" in wanted:
        made.append(identification_figure(args.out))
    if "indexing" in wanted:
        made.append(indexing_figure(args.out))
    if "synthetic" in wanted:
        made.append(synthetic_figure(args.data_root, args.out))
    if "report" in wanted:
        made.append(report_figure(args.data_root, args.out, args.runs))
    for path in made:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
