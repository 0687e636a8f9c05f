"""How a generated set behaves with a reference system: NBIS MINDTCT minutiae and NFIQ 2
quality, BOZORTH3 scores under the FVC verification protocol, and MINDTCT's accuracy
against the ground truth. Used to calibrate the generator and to check it in CI; needs
the ``nbis`` package (nbis-py).

Protocol: genuine = each impression against every later impression of the same finger;
impostor = the first impression of each finger against the first impression of every
other finger (symmetric comparisons skipped), as in FVC2000-2004.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from bench.synthetic.accuracy import ANGLE_DEG, DISTANCE_MM, aggregate
from bench.synthetic.groundtruth import groundtruth_paths, read_groundtruth
from bench.template import TYPE_BIFURCATION, TYPE_ENDING, Template, make_minutiae

log = logging.getLogger(__name__)

_EXTRACTORS: dict[tuple[bool, float], Any] = {}
_TEMPLATES: dict[str, Any] = {}


def _extractor(nfiq2: bool, dpi: float) -> Any:
    import nbis

    key = (nfiq2, dpi)
    if key not in _EXTRACTORS:
        _EXTRACTORS[key] = nbis.new_nbis_extractor(
            nbis.NbisExtractorSettings(
                min_quality=0.0, get_center=False, check_fingerprint=False, compute_nfiq2=nfiq2, ppi=float(dpi)
            )
        )
    return _EXTRACTORS[key]


def _extract(args: tuple[str, float]) -> tuple[str, list[tuple[int, int, float, int]], float, bytes]:
    path, dpi = args
    data = Path(path).read_bytes()
    try:
        m = _extractor(True, dpi).extract_minutiae(data)
        quality = float(m.quality().score)
    except Exception:  # NFIQ 2 fails on some images; minutiae without it
        m = _extractor(False, dpi).extract_minutiae(data)
        quality = float("nan")
    pts = [
        (int(a.x()), int(a.y()), float(a.angle()),
         TYPE_ENDING if "ENDING" in str(a.kind()).upper() else TYPE_BIFURCATION)
        for a in m.get()
    ]
    return path, pts, quality, bytes(m.to_iso_19794_2_2005())


def _load_templates(blobs: dict[str, bytes], dpi: float) -> None:
    ex = _extractor(False, dpi)
    _TEMPLATES.clear()
    _TEMPLATES.update({k: ex.load_iso_19794_2_2005(v) for k, v in blobs.items()})


def _compare(pairs: list[tuple[str, str]]) -> list[int]:
    return [int(_TEMPLATES[a].compare(_TEMPLATES[b])) for a, b in pairs]


def fvc_pairs(fingers: list[int], impressions: list[int]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Genuine and impostor pairs of sample ids under the FVC protocol."""
    genuine = [(f"{f}_{i}", f"{f}_{j}") for f in fingers for i in impressions for j in impressions if j > i]
    first = impressions[0]
    impostor = [(f"{a}_{first}", f"{b}_{first}") for a in fingers for b in fingers if b > a]
    return genuine, impostor


def nbis_check(root: str | Path, jobs: int | None = None, dpi: float | None = None) -> dict[str, Any]:
    """Run MINDTCT and BOZORTH3 on the ``<finger>_<impression>`` images of ``root``
    (PNG or TIFF) and summarise: minutiae counts, NFIQ 2, genuine/impostor scores, the
    FVC EER and, where the generator's ground truth is present, MINDTCT's accuracy."""
    from bench.metrics import eer

    root = Path(root)
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in (".png", ".tif", ".tiff") and "_" in p.stem)
    if dpi is None:
        from bench.synthetic.generate import read_meta

        meta = read_meta(root)
        dpi = float(meta["params"]["dpi"]) if meta else 500.0
    n_jobs = max(1, jobs or os.cpu_count() or 1)
    t0 = time.perf_counter()
    ctx = get_context("spawn")
    tasks = [(str(p), dpi) for p in files]
    if n_jobs == 1:
        extracted = [_extract(t) for t in tasks]
    else:
        with ProcessPoolExecutor(n_jobs, mp_context=ctx) as pool:
            extracted = list(pool.map(_extract, tasks, chunksize=8))
    t_extract = time.perf_counter() - t0
    found: dict[str, list[tuple[int, int, float, int]]] = {}
    quality: list[float] = []
    blobs: dict[str, bytes] = {}
    for path, pts, q, blob in extracted:
        sid = Path(path).stem
        found[sid], blobs[sid] = pts, blob
        quality.append(q)

    keys = [tuple(map(int, k.split("_"))) for k in found]
    fingers = sorted({f for f, _ in keys})
    impressions = sorted({i for _, i in keys})
    genuine_pairs, impostor_pairs = fvc_pairs(fingers, impressions)
    t1 = time.perf_counter()
    all_pairs = genuine_pairs + impostor_pairs
    chunks = [all_pairs[i : i + 256] for i in range(0, len(all_pairs), 256)]
    if n_jobs == 1:
        _load_templates(blobs, dpi)
        scores = [s for chunk in chunks for s in _compare(chunk)]
    else:
        with ProcessPoolExecutor(n_jobs, mp_context=ctx, initializer=_load_templates, initargs=(blobs, dpi)) as pool:
            scores = [s for chunk in pool.map(_compare, chunks) for s in chunk]
    t_compare = time.perf_counter() - t1
    gen = np.array(scores[: len(genuine_pairs)], dtype=np.float64)
    imp = np.array(scores[len(genuine_pairs) :], dtype=np.float64)
    counts = np.array([len(v) for v in found.values()], dtype=np.float64)
    q = np.array(quality, dtype=np.float64)

    def pct(a: np.ndarray) -> dict[str, float]:
        a = a[np.isfinite(a)]
        if a.size == 0:
            return {}
        return {k: float(np.percentile(a, p)) for k, p in (("p10", 10), ("median", 50), ("p90", 90))} | {
            "mean": float(np.mean(a))
        }

    out: dict[str, Any] = {
        "root": str(root),
        "images": len(files),
        "fingers": len(fingers),
        "impressions": len(impressions),
        "eer": eer(gen, imp).to_dict() if gen.size and imp.size else None,
        "genuine_scores": pct(gen),
        "impostor_scores": pct(imp)
        | ({"p99": float(np.percentile(imp, 99)), "max": float(imp.max())} if imp.size else {}),
        "mindtct_minutiae": pct(counts),
        "nfiq2": pct(q) | {"failed": int(np.sum(~np.isfinite(q)))},
        "seconds": {"extract": round(t_extract, 2), "compare": round(t_compare, 2)},
    }
    items = []
    for sid, pts in found.items():
        gt_path = groundtruth_paths(root, sid)["json"]
        if not gt_path.is_file():
            continue
        gt = read_groundtruth(gt_path)
        a = np.array(pts, dtype=np.float64).reshape(-1, 4)
        t = gt.template
        mindtct = Template(make_minutiae(a[:, 0], a[:, 1], np.radians(a[:, 2]), a[:, 3]), t.width, t.height, t.dpi)
        items.append((mindtct, t, gt.visible))
    if items:
        out["mindtct_vs_groundtruth"] = aggregate(items, DISTANCE_MM, ANGLE_DEG).to_dict()
    return out
