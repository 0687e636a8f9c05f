"""Generate a synthetic fingerprint dataset in the FVC layout, with ground truth.

    >>> from bench.synthetic import generate_dataset
    >>> report = generate_dataset("synthetic-db", fingers=10, impressions=8, seed=0)

Layout of ``out_dir``::

    synthetic.json                    parameters and versions (first), then a summary (last)
    <finger>_<impression>.png         the images (8-bit grayscale, lossless), fingers from 1
    groundtruth/<id>.json             minutiae (ISO convention), class, singular points
    groundtruth/<id>.iso              the same minutiae as an ISO/IEC 19794-2:2005 record
    groundtruth/<id>.mask.png         visible area where the ground truth is complete
    .progress/<finger>.json           marker written once all files of a finger exist
    .complete                         marker written last, once every finger is done

Generation is resumable: every file is written atomically, a finger counts as done only
when its marker lists files that are all present with the recorded sizes, and the set
is complete only when the final ``.complete`` marker is there too (and every finger
checks out). Running again with the same parameters completes an interrupted set and
leaves finished fingers alone.

Reproducibility: a finger's class comes from
:func:`~bench.synthetic.orientation.class_for_finger` (natural proportions even in small
sets), its master print is drawn from ``SeedSequence(seed, spawn_key=(finger,))`` and
each impression from ``spawn_key=(finger, impression)``, so a finger does not depend on
how many fingers or impressions are generated, nor on the number of worker processes.
Everything runs single-threaded, and intermediate fields are rounded to a binary grid so
that last-bit differences between processors' maths libraries vanish; the SHA-256 of
every image's pixels is recorded in ``synthetic.json`` so another machine can check it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.formats import iso19794_2
from bench.formats.records import FingerView
from bench.synthetic.groundtruth import GROUNDTRUTH_DIR, GroundTruth, groundtruth_paths, groundtruth_to_json
if TYPE_CHECKING:  # the renderers import scipy.ndimage (slow): loaded when a finger is made
    from bench.synthetic.impression import Impression
    from bench.synthetic.master import MasterPrint
from bench.synthetic.orientation import class_for_finger
from bench.synthetic.pngio import encode_png_gray
from bench.template import Template

log = logging.getLogger(__name__)

#: Bumped whenever the same parameters would give different images.
GENERATOR_VERSION = "1.1"
META_FILE = "synthetic.json"
COMPLETE_MARKER = ".complete"
META_FORMAT = "fingerbench-synthetic-dataset"
PROGRESS_DIR = ".progress"

#: Calibrated levels. MINDTCT + BOZORTH3 (NBIS), FVC protocol, 100 fingers x 8 impressions,
#: 288x384 at 500 dpi, generator 1.0: EER 0.0 % (easy), 4.2 % (default), 14.6 % (hard);
#: the real FVC2000/2002 B sets give 3-10 % with the same system.
DIFFICULTY_LEVELS: dict[str, float] = {"easy": 0.2, "default": 0.65, "hard": 0.85}
LIMITS: dict[str, tuple[float, float]] = {
    "fingers": (1, 100_000),
    "impressions": (1, 1000),
    "width": (128, 4096),
    "height": (128, 4096),
    "dpi": (250, 1000),
    "difficulty": (0.0, 1.0),
    "noise": (0.0, 10.0),
    "seed": (0, 2**63 - 1),
    "jobs": (1, 1024),
}


@dataclass(frozen=True)
class SyntheticConfig:
    """Validated generation parameters (see :func:`make_config`)."""

    fingers: int = 10
    impressions: int = 8
    width: int = 288
    height: int = 384
    dpi: float = 500.0
    difficulty: float = DIFFICULTY_LEVELS["default"]
    noise: float = 1.0
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def digest(self) -> str:
        """Short stable hash of the parameters and generator version (cache keys)."""
        text = json.dumps({**self.to_dict(), "generator_version": GENERATOR_VERSION}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def sample_ids(self) -> list[str]:
        return [f"{f}_{i}" for f in range(1, self.fingers + 1) for i in range(1, self.impressions + 1)]


def _integer(name: str, value: Any) -> int:
    lo, hi = LIMITS[name]
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            value = int(value)
        else:
            raise ValueError(f"{name} must be a whole number from {int(lo)} to {int(hi)}, got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be from {int(lo)} to {int(hi)}, got {value}")
    return int(value)


def _number(name: str, value: Any, unit: str = "") -> float:
    lo, hi = LIMITS[name]
    try:
        if isinstance(value, bool):
            raise TypeError
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number from {lo:g} to {hi:g}{unit}, got {value!r}") from None
    if not (math.isfinite(v) and lo <= v <= hi):
        raise ValueError(f"{name} must be from {lo:g} to {hi:g}{unit}, got {value!r}")
    return v


def resolve_difficulty(difficulty: float | str) -> float:
    """A difficulty given as a number in [0, 1] or as a level name (easy, default, hard)."""
    if isinstance(difficulty, str):
        key = difficulty.strip().lower()
        if key in DIFFICULTY_LEVELS:
            return DIFFICULTY_LEVELS[key]
    lo, hi = LIMITS["difficulty"]
    try:
        if isinstance(difficulty, bool):
            raise TypeError
        value = float(difficulty)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and lo <= value <= hi):
        raise ValueError(
            f"difficulty must be a number from {lo:g} to {hi:g} or one of {', '.join(DIFFICULTY_LEVELS)}, "
            f"got {difficulty!r}"
        )
    return value


def make_config(
    fingers: int = 10,
    impressions: int = 8,
    width: int = 288,
    height: int = 384,
    dpi: float = 500.0,
    difficulty: float | str = "default",
    noise: float = 1.0,
    seed: int = 0,
) -> SyntheticConfig:
    """Check generation parameters; an impossible one raises ValueError naming the
    parameter and its allowed range."""
    return SyntheticConfig(
        fingers=_integer("fingers", fingers),
        impressions=_integer("impressions", impressions),
        width=_integer("width", width),
        height=_integer("height", height),
        dpi=_number("dpi", dpi, " dots per inch"),
        difficulty=resolve_difficulty(difficulty),
        noise=_number("noise", noise),
        seed=_integer("seed", seed),
    )


# -- one finger, in memory ------------------------------------------------------------------


def master_rng(seed: int, finger: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(finger,))))


def impression_rng(seed: int, finger: int, impression: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(finger, impression))))


def make_finger(
    config: SyntheticConfig, finger: int, impressions: list[int] | None = None
) -> tuple[MasterPrint, list[Impression]]:
    """The master print of ``finger`` (1-based) and its impressions (all by default)."""
    from bench.synthetic.impression import render_impression
    from bench.synthetic.master import make_master

    master = make_master(master_rng(config.seed, finger), config.dpi, class_for_finger(config.seed, finger))
    which = impressions if impressions is not None else list(range(1, config.impressions + 1))
    out = [
        render_impression(impression_rng(config.seed, finger, i), master, config.width, config.height,
                          config.difficulty, config.noise)
        for i in which
    ]
    return master, out


def pixel_digest(image: np.ndarray) -> str:
    """SHA-256 of an image's shape and pixels (independent of the file encoding)."""
    h = hashlib.sha256(f"{image.shape[1]}x{image.shape[0]}:".encode())
    h.update(np.ascontiguousarray(image, dtype=np.uint8).tobytes())
    return h.hexdigest()


# -- files ------------------------------------------------------------------------------------


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _groundtruth(
    config: SyntheticConfig, master: MasterPrint, imp: Impression, finger: int, impression: int
) -> GroundTruth:
    template = Template(imp.minutiae, config.width, config.height, config.dpi)
    meta = {
        "finger": finger,
        "impression": impression,
        "seed": config.seed,
        "generator_version": GENERATOR_VERSION,
        "visible_area_px": int(imp.visible.sum()),
        "impression_params": imp.params.to_dict(),
        "master": {
            "footprint": master.footprint.to_dict(),
            "mean_ridge_period_px": round(master.mean_period, 3),
            "minutiae": int(master.minutiae.size),
        },
    }
    return GroundTruth(template, master.fingerprint_class, imp.singular_points, imp.visible, meta)


def write_finger(root: Path, config: SyntheticConfig, finger: int) -> dict[str, Any]:
    """Generate one finger's images and ground truth into ``root``; returns its summary
    (also written as the finger's completion marker, last)."""
    import cv2

    cv2.setNumThreads(1)
    t0 = time.perf_counter()
    master, impressions = make_finger(config, finger)
    files: dict[str, int] = {}
    digests: dict[str, str] = {}
    counts: list[int] = []
    for i, imp in enumerate(impressions, 1):
        sid = f"{finger}_{i}"
        gt = _groundtruth(config, master, imp, finger, i)
        paths = groundtruth_paths(root, sid)
        outputs = {
            root / f"{sid}.png": encode_png_gray(imp.image),
            paths["json"]: groundtruth_to_json(gt, f"{sid}.png").encode(),
            paths["iso"]: iso19794_2.encode(FingerView(gt.template, finger_quality=100)),
            paths["mask"]: encode_png_gray(np.where(imp.visible, 255, 0).astype(np.uint8)),
        }
        for path, data in outputs.items():
            _write_atomic(path, data)
            files[path.relative_to(root).as_posix()] = len(data)
        digests[sid] = pixel_digest(imp.image)
        counts.append(int(imp.minutiae.size))
    summary = {
        "finger": finger,
        "class": master.fingerprint_class,
        "singular_points": [sp.to_dict() for sp in master.spec.singular_points],
        "master_minutiae": int(master.minutiae.size),
        "minutiae": counts,
        "pixel_sha256": digests,
        "files": files,
    }
    _write_atomic(root / PROGRESS_DIR / f"{finger}.json", json.dumps(summary, indent=1).encode())
    summary["seconds"] = time.perf_counter() - t0
    return summary


def _finger_done(root: Path, finger: int) -> dict[str, Any] | None:
    marker = root / PROGRESS_DIR / f"{finger}.json"
    try:
        summary = json.loads(marker.read_text())
        for rel, size in summary["files"].items():
            if (root / rel).stat().st_size != size:
                return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return summary


def read_meta(root: str | Path) -> dict[str, Any] | None:
    """The ``synthetic.json`` of a generated folder, or None when absent or unreadable."""
    try:
        meta = json.loads((Path(root) / META_FILE).read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("format") == META_FORMAT else None


def is_complete(root: str | Path, config: SyntheticConfig | None = None) -> bool:
    """Whether ``root`` holds a finished set (of ``config``'s parameters, when given):
    the final marker is set and every finger's files are present with their sizes."""
    root = Path(root)
    meta = read_meta(root)
    if meta is None or meta.get("generator_version") != GENERATOR_VERSION:
        return False
    try:
        marker = json.loads((root / COMPLETE_MARKER).read_text())
    except (OSError, ValueError):
        return False
    try:
        stored = SyntheticConfig(**meta["params"])
    except (KeyError, TypeError):
        return False
    if config is not None and stored != config:
        return False
    if not isinstance(marker, dict) or marker.get("digest") != stored.digest():
        return False
    return all(_finger_done(root, f) is not None for f in range(1, stored.fingers + 1))


def _meta(config: SyntheticConfig, complete: bool, fingers: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    from bench.provenance import package_versions

    meta: dict[str, Any] = {
        "format": META_FORMAT,
        "format_version": 1,
        "generator": "bench.synthetic",
        "generator_version": GENERATOR_VERSION,
        "params": config.to_dict(),
        "difficulty_levels": DIFFICULTY_LEVELS,
        "layout": {
            "images": "<finger>_<impression>.png",
            "groundtruth": f"{GROUNDTRUTH_DIR}/<finger>_<impression>.json|.iso|.mask.png",
            "first_finger": 1,
        },
        "packages": package_versions(),
        "complete": complete,
    }
    if fingers is not None:
        classes: dict[str, int] = {}
        for f in fingers:
            classes[f["class"]] = classes.get(f["class"], 0) + 1
        n = [m for f in fingers for m in f["minutiae"]]
        meta["summary"] = {
            "classes": dict(sorted(classes.items())),
            "images": len(n),
            "minutiae_per_image": {"mean": round(float(np.mean(n)), 2), "min": int(min(n)), "max": int(max(n))},
        }
        meta["fingers"] = [
            {"finger": f["finger"], "class": f["class"], "singular_points": f["singular_points"],
             "pixel_sha256": f["pixel_sha256"]}
            for f in fingers
        ]
    return meta


def _prepare_folder(root: Path, config: SyntheticConfig, overwrite: bool) -> None:
    meta = read_meta(root)
    if meta is not None:
        try:
            stored = SyntheticConfig(**meta["params"])
        except (KeyError, TypeError):
            stored = None
        same = stored == config and meta.get("generator_version") == GENERATOR_VERSION
        if same:
            return
        if not overwrite:
            diff = _describe_difference(meta, config)
            raise ValueError(
                f"{root} holds another synthetic set ({diff}); choose another folder or pass overwrite=True"
            )
        _remove_generated(root)
        return
    if root.exists() and any(not p.name.startswith(".") for p in root.iterdir()):
        if not overwrite:
            raise ValueError(
                f"{root} is not empty and holds no {META_FILE}: choose an empty or new folder "
                "(or pass overwrite=True to write into it anyway)"
            )


def _describe_difference(meta: dict[str, Any], config: SyntheticConfig) -> str:
    if meta.get("generator_version") != GENERATOR_VERSION:
        return f"generator version {meta.get('generator_version')} instead of {GENERATOR_VERSION}"
    stored = meta.get("params") or {}
    parts = [f"{k}={stored.get(k)!r} instead of {v!r}" for k, v in config.to_dict().items() if stored.get(k) != v]
    return ", ".join(parts) or "unreadable parameters"


def _remove_generated(root: Path) -> None:
    import re

    pattern = re.compile(r"^\d+_\d+\.png$")
    for p in root.iterdir():
        if p.is_file() and pattern.match(p.name):
            p.unlink()
    for sub in (GROUNDTRUTH_DIR, PROGRESS_DIR):
        d = root / sub
        if d.is_dir():
            for p in d.iterdir():
                if p.is_file():
                    p.unlink()
    (root / META_FILE).unlink(missing_ok=True)
    (root / COMPLETE_MARKER).unlink(missing_ok=True)


@dataclass
class GenerationReport:
    """What :func:`generate_dataset` did."""

    root: Path
    config: SyntheticConfig
    generated_fingers: int
    reused_fingers: int
    seconds: float
    images_per_second: float
    summary: dict[str, Any] = field(default_factory=dict)


def _init_worker() -> None:
    import cv2

    cv2.setNumThreads(1)


def generate_dataset(
    out_dir: str | Path,
    fingers: int = 10,
    impressions: int = 8,
    width: int = 288,
    height: int = 384,
    dpi: float = 500.0,
    difficulty: float | str = "default",
    noise: float = 1.0,
    seed: int = 0,
    jobs: int | None = None,
    progress: bool | None = None,
    overwrite: bool = False,
) -> GenerationReport:
    """Generate (or complete) a synthetic dataset in ``out_dir``; see the module doc.

    ``difficulty``: 0 (clean, well placed) to 1 (very hard), or a calibrated level of
    :data:`DIFFICULTY_LEVELS` ("easy", "default", "hard"); it scales placement,
    distortion, contact area, pressure, dryness and noise. ``noise`` multiplies the sensor noise and background texture.
    ``jobs``: worker processes (default: the number of CPUs, at most one per finger).
    ``progress``: a progress bar (default: only on a terminal). A folder that holds a set
    made with other parameters is refused unless ``overwrite``.
    """
    config = make_config(fingers, impressions, width, height, dpi, difficulty, noise, seed)
    n_jobs = (os.cpu_count() or 1) if jobs is None else _integer("jobs", jobs)
    root = Path(out_dir).expanduser().absolute()
    if root.exists() and not root.is_dir():
        raise ValueError(f"out_dir {root} exists and is not a folder")
    t0 = time.perf_counter()
    if is_complete(root, config):
        log.info("synthetic set in %s is complete; nothing to do", root)
        return GenerationReport(root, config, 0, config.fingers, 0.0, 0.0, (read_meta(root) or {}).get("summary", {}))
    root.mkdir(parents=True, exist_ok=True)
    _prepare_folder(root, config, overwrite)
    (root / GROUNDTRUTH_DIR).mkdir(exist_ok=True)
    (root / PROGRESS_DIR).mkdir(exist_ok=True)
    (root / COMPLETE_MARKER).unlink(missing_ok=True)
    _write_atomic(root / META_FILE, (json.dumps(_meta(config, complete=False), indent=1) + "\n").encode())

    done: dict[int, dict[str, Any]] = {}
    todo: list[int] = []
    for f in range(1, config.fingers + 1):
        summary = _finger_done(root, f)
        if summary is None:
            todo.append(f)
        else:
            done[f] = summary
    reused = len(done)
    if reused:
        log.info("resuming %s: %d of %d fingers already done", root, reused, config.fingers)
    n_jobs = max(1, min(n_jobs, len(todo) or 1))

    from bench.progress import progress as progress_bar

    bar = progress_bar(len(todo) * config.impressions, "synthetic images", progress, unit="img")
    try:
        if n_jobs == 1:
            for f in todo:
                done[f] = write_finger(root, config, f)
                bar.update(config.impressions)
        else:
            with ProcessPoolExecutor(max_workers=n_jobs, mp_context=get_context("spawn"),
                                     initializer=_init_worker) as pool:
                pending = {pool.submit(write_finger, root, config, f): f for f in todo}
                while pending:
                    finished, _ = wait(pending, return_when=FIRST_EXCEPTION)
                    for fut in finished:
                        f = pending.pop(fut)
                        done[f] = fut.result()  # re-raises a worker's error
                        bar.update(config.impressions)
    finally:
        bar.close()

    fingers_summary = [done[f] for f in range(1, config.fingers + 1)]
    meta = _meta(config, complete=True, fingers=fingers_summary)
    _write_atomic(root / META_FILE, (json.dumps(meta, indent=1) + "\n").encode())
    marker = {"digest": config.digest(), "images": len(config.sample_ids())}
    _write_atomic(root / COMPLETE_MARKER, json.dumps(marker).encode())
    seconds = time.perf_counter() - t0
    made = len(todo) * config.impressions
    rate = made / seconds if seconds > 0 else 0.0
    log.info("generated %d images (%d fingers) in %s in %.1f s (%.1f images/s, %d processes)",
             made, len(todo), root, seconds, rate, n_jobs)
    return GenerationReport(root, config, len(todo), reused, seconds, rate, meta["summary"])
