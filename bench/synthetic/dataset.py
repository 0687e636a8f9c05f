"""The synthetic set as a FingerBench dataset: registry entry, loader, and the default
set generated on first use into the cache.

    >>> from bench.synthetic.dataset import ensure_dataset, load_synthetic, INFO
    >>> root = ensure_dataset()                 # generates 10 x 8 images once, then reuses them
    >>> ds = load_synthetic(INFO, root)
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from bench import references
from bench.datasets.base import Dataset, DatasetError, DatasetInfo, Problem, Sample
from bench.datasets.imagecheck import check_level
from bench.datasets.scan import list_files, validated
from bench.synthetic.generate import (
    META_FILE,
    SyntheticConfig,
    generate_dataset,
    is_complete,
    make_config,
    read_meta,
)
from bench.synthetic.groundtruth import groundtruth_paths

log = logging.getLogger(__name__)

#: The default set: small enough that generating it and running NBIS on it takes well
#: under a minute on two cores, large enough for 280 genuine and 45 impostor FVC pairs
#: (the size of an FVC "B" set).
DEFAULT_PARAMS: dict[str, Any] = {
    "fingers": 10,
    "impressions": 8,
    "width": 288,
    "height": 384,
    "dpi": 500.0,
    "difficulty": "default",
    "noise": 1.0,
    "seed": 0,
}

CITATION = (
    "Generator in the spirit of SFinGe: R. Cappelli, D. Maio, D. Maltoni, \"Synthetic "
    "fingerprint-database generation\", Proc. 16th ICPR, 2002; R. Cappelli, \"Synthetic "
    "fingerprint generation\", in Handbook of Fingerprint Recognition, 2nd ed., Springer, 2009."
)

INFO = DatasetInfo(
    name="synthetic",
    title="FingerBench synthetic fingerprints",
    sensor="synthetic (bench.synthetic, SFinGe-like generator)",
    dpi=500.0,
    image_size=(288, 384),
    fingers=None,
    impressions=None,
    licence="Generated locally by FingerBench from a seed; contains no third-party data; free to use and share.",
    citation=CITATION,
    bibtex=references.SYNTHESIS,
    url="",
    protocols=("fvc", "all-pairs"),
    default_subdir="synthetic",
    notes=(
        "Made by bench.synthetic.generate_dataset: <finger>_<impression>.png from finger 1, with "
        "ground-truth minutiae (JSON, ISO/IEC 19794-2), class, singular points and visible-area "
        "masks under groundtruth/. The default set (10 fingers x 8 impressions, 288x384 at 500 dpi, "
        "difficulty 'default') is generated into the cache on first use."
    ),
)

_NAME = re.compile(r"^(?P<finger>\d+)_(?P<impression>\d+)\.png$")


def default_root(cache_dir: str | Path | None = None, **params: Any) -> Path:
    """Where the set with ``params`` (defaults: :data:`DEFAULT_PARAMS`) is cached:
    ``<cache>/synthetic/<hash of the parameters and generator version>``."""
    if cache_dir is None:
        from bench.store.template_cache import default_cache_dir

        cache_dir = default_cache_dir()
    config = make_config(**{**DEFAULT_PARAMS, **params})
    return Path(cache_dir).expanduser() / "synthetic" / f"{config.digest()}"


def ensure_dataset(
    root: str | Path | None = None,
    *,
    cache_dir: str | Path | None = None,
    jobs: int | None = None,
    progress: bool | None = None,
    **params: Any,
) -> Path:
    """A complete synthetic set with ``params`` (defaults: :data:`DEFAULT_PARAMS`) in
    ``root`` (default: :func:`default_root`): generated if absent, completed if
    interrupted, reused if complete. Returns its folder."""
    merged = {**DEFAULT_PARAMS, **params}
    config = make_config(**merged)
    folder = Path(root).expanduser() if root is not None else default_root(cache_dir, **params)
    if not is_complete(folder, config):
        generate_dataset(folder, jobs=jobs, progress=progress, **merged)
    return folder


def _stored_config(root: Path) -> tuple[SyntheticConfig, dict[str, Any]]:
    meta = read_meta(root)
    if meta is None:
        raise DatasetError(
            f"{root} holds no {META_FILE}: not a set made by bench.synthetic.generate_dataset "
            "(generate one there, or open the folder with the 'folder' dataset)"
        )
    try:
        return SyntheticConfig(**meta["params"]), meta
    except (KeyError, TypeError) as exc:
        raise DatasetError(f"{root / META_FILE}: unreadable parameters ({exc})") from None


def load_synthetic(info: DatasetInfo, root: Path, *, validate: str = "header", complete: bool = True) -> Dataset:
    """Open a generated set. An interrupted generation is completed first (the same
    parameters give the same images) unless ``complete`` is false, in which case the
    missing images are reported as problems."""
    root = Path(root)
    level = check_level(validate)
    config, meta = _stored_config(root)
    if not is_complete(root, config):
        if not complete:
            log.warning("%s: synthetic set is incomplete", root)
        else:
            log.warning("%s: synthetic set is incomplete (interrupted generation?); completing it", root)
            generate_dataset(root, **config.to_dict())
            meta = read_meta(root) or meta
    classes = {int(f["finger"]): f["class"] for f in meta.get("fingers", [])}
    info = replace(
        info,
        dpi=float(config.dpi),
        image_size=(config.width, config.height),
        fingers=config.fingers,
        impressions=config.impressions,
    )
    problems: list[Problem] = []
    present: set[tuple[int, int]] = set()
    for path in list_files(root, problems=problems):
        if path.name == META_FILE:
            continue
        m = _NAME.match(path.name)
        if m and 1 <= int(m["finger"]) <= config.fingers and 1 <= int(m["impression"]) <= config.impressions:
            present.add((int(m["finger"]), int(m["impression"])))
        else:
            problems.append(Problem("extra", str(path), f"{path.name}: not an image of this synthetic set; ignored"))
    samples: list[Sample] = []
    for f in range(1, config.fingers + 1):
        for i in range(1, config.impressions + 1):
            sid = f"{f}_{i}"
            attrs = {"class": classes.get(f), "groundtruth": str(groundtruth_paths(root, sid)["json"])}
            if (f, i) not in present:
                expected = root / f"{sid}.png"
                problems.append(Problem("missing", str(expected), f"{expected.name}: expected by the layout, absent"))
                samples.append(Sample(sid, str(f), i, None, info.dpi, attrs))
            else:
                samples.append(Sample(sid, str(f), i, root / f"{sid}.png", info.dpi, attrs))
    samples = validated(samples, problems, info.image_size, level)
    return Dataset(
        info=info, root=root, samples=samples, problems=problems,
        params={"validate": level, **{f"synthetic_{k}": v for k, v in config.to_dict().items()}},
    )


def run_folder_name(dataset: Dataset) -> str:
    """The folder of ``dataset``'s runs under a results folder: its name, except that a synthetic
    set made with other parameters than the embedded one is ``synthetic-<digest>`` (its cache
    folder's name), so that their runs never share a folder."""
    prefix = "synthetic_"
    params = {k[len(prefix):]: v for k, v in dataset.params.items() if k.startswith(prefix)}
    if dataset.name != INFO.name or not params:
        return dataset.name
    digest = SyntheticConfig(**params).digest()
    return INFO.name if digest == make_config(**DEFAULT_PARAMS).digest() else f"{INFO.name}-{digest}"


def registrations() -> list[tuple[DatasetInfo, Callable[..., Dataset], tuple[str, ...]]]:
    """(info, loader, alternative sub-folders) for the dataset registry."""
    return [(INFO, load_synthetic, ())]
