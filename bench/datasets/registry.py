"""The dataset registry: names, metadata, loaders, root resolution and plugins.

A loader is a callable ``loader(info, root, **params) -> Dataset``; ``root`` is the
dataset's own folder (an existing, non-empty directory) and ``params`` its keyword-only
parameters, checked against its signature before the call.

Third-party datasets: a package declares an entry point in the group
``fingerbench.datasets`` whose object is a callable taking no argument and returning an
iterable of ``(DatasetInfo, loader)`` pairs (or ``(DatasetInfo, loader, subdirs)``
triples, ``subdirs`` naming other places below a data root where the dataset may lie)::

    [project.entry-points."fingerbench.datasets"]
    mydb = "mypackage.fingerbench_plugin:datasets"

Plugins are loaded on first use of the registry. A plugin that fails to load, or that
reuses a name already registered, is skipped with a logged warning.
"""

from __future__ import annotations

import difflib
import inspect
import logging
import os
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterable

from bench.datasets.base import Dataset, DatasetError, DatasetInfo
from bench.datasets.scan import find_subdir, require_dir

log = logging.getLogger(__name__)

Loader = Callable[..., Dataset]
ENTRY_POINT_GROUP = "fingerbench.datasets"
DATA_ENV = "FINGERBENCH_DATA"
_NAME_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


@dataclass(frozen=True)
class Registration:
    """A registered dataset: its metadata, its loader, where it may lie below a data root."""

    info: DatasetInfo
    loader: Loader
    subdirs: tuple[str, ...] = ()  # alternatives to info.default_subdir
    origin: str = "built-in"


_registry: dict[str, Registration] = {}
_builtins_loaded = False
_plugins_loaded = False


def _builtins() -> list[tuple[DatasetInfo, Loader, tuple[str, ...]]]:
    from bench.datasets import folder, fvc, nist, socofing, templates
    from bench.synthetic import dataset as synthetic

    return [
        *synthetic.registrations(),
        *fvc.registrations(),
        *socofing.registrations(),
        *nist.registrations(),
        *templates.registrations(),
        (folder.INFO, folder.load_folder, ()),
    ]


def _ensure_loaded() -> None:
    """Register the built-in datasets, then the plugins, once."""
    global _builtins_loaded, _plugins_loaded
    if not _builtins_loaded:
        for info, loader, subdirs in _builtins():
            _add(info, loader, subdirs, "built-in", replace=True)
        _builtins_loaded = True
    if not _plugins_loaded:
        _plugins_loaded = True
        load_plugins()


def register(
    info: DatasetInfo,
    loader: Loader,
    subdirs: Iterable[str] = (),
    *,
    origin: str = "registered at run time",
    replace: bool = False,
) -> None:
    """Add a dataset to the registry; a name already taken raises DatasetError unless
    ``replace`` is true."""
    _ensure_loaded()
    _add(info, loader, subdirs, origin, replace)


def _add(info: DatasetInfo, loader: Loader, subdirs: Iterable[str], origin: str, replace: bool) -> None:
    if not _NAME_RE.match(info.name):
        raise DatasetError(f"dataset name {info.name!r} must be lowercase words joined by hyphens")
    if not callable(loader):
        raise DatasetError(f"loader of dataset {info.name!r} is not callable")
    if info.name in _registry and not replace:
        raise DatasetError(f"dataset {info.name!r} is already registered ({_registry[info.name].origin})")
    _registry[info.name] = Registration(info, loader, tuple(subdirs), origin)


def load_plugins(entry_points: Iterable[Any] | None = None) -> list[str]:
    """Register the datasets offered by entry points of group ``fingerbench.datasets``
    (or by ``entry_points``, objects with ``name`` and ``load()``); returns the names added."""
    if entry_points is None:
        try:
            entry_points = metadata.entry_points(group=ENTRY_POINT_GROUP)
        except Exception as exc:  # pragma: no cover - broken installation metadata
            log.warning("cannot list %s entry points: %s", ENTRY_POINT_GROUP, exc)
            return []
    added: list[str] = []
    for ep in entry_points:
        origin = f"plugin {getattr(ep, 'name', '?')} ({getattr(ep, 'value', '?')})"
        try:
            offered = list(ep.load()())
        except Exception as exc:
            log.warning("dataset %s failed to load and is skipped: %s: %s", origin, type(exc).__name__, exc)
            continue
        for item in offered:
            try:
                info, loader, *rest = item
                if not isinstance(info, DatasetInfo):
                    raise DatasetError(f"expected a DatasetInfo, got {type(info).__name__}")
                register(info, loader, rest[0] if rest else (), origin=origin)
                added.append(info.name)
            except (DatasetError, ValueError, TypeError) as exc:
                log.warning("a dataset from %s is skipped: %s", origin, exc)
    return added


def available() -> dict[str, DatasetInfo]:
    """Every registered dataset name with its metadata (built-in ones, then plugins)."""
    _ensure_loaded()
    return {name: reg.info for name, reg in _registry.items()}


def registration(name: str) -> Registration:
    """The registration of ``name`` (case and ``_``/``-`` are forgiven); an unknown name
    raises DatasetError suggesting close matches."""
    _ensure_loaded()
    key = name.strip().lower().replace("_", "-")
    if key in _registry:
        return _registry[key]
    close = difflib.get_close_matches(key, list(_registry), n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise DatasetError(
        f"unknown dataset {name!r}{hint} (known: {len(_registry)} datasets; list them with available())"
    )


def resolve_root(
    info: DatasetInfo, root: str | Path | None = None, data_root: str | Path | None = None
) -> Path:
    """The folder of a dataset: ``root`` itself when given; else ``info.default_subdir``
    (or a registered alternative, matched ignoring case) below ``data_root``, or below the
    folder named by the environment variable FINGERBENCH_DATA."""
    if root is not None:
        return require_dir(Path(root).expanduser().absolute(), f"{info.name}: dataset folder")
    if data_root is not None:
        base, origin = Path(data_root).expanduser().absolute(), "data_root (--data-root)"
    elif os.environ.get(DATA_ENV):
        base, origin = Path(os.environ[DATA_ENV]).expanduser().absolute(), f"environment variable {DATA_ENV}"
    else:
        where = f" (it is looked for in <data root>/{info.default_subdir})" if info.default_subdir else ""
        raise DatasetError(
            f"no location given for dataset {info.name!r}: pass root= (the dataset's own folder; "
            f"CLI --dataset-path), or data_root= (a folder holding datasets{where}; CLI --data-root), "
            f"or set the environment variable {DATA_ENV} to such a folder"
        )
    if not info.default_subdir:
        raise DatasetError(
            f"dataset {info.name!r} has no default place below a data root: pass root= "
            "(CLI --dataset-path) with its folder"
        )
    require_dir(base, f"data root (from {origin})")
    _ensure_loaded()
    reg = _registry.get(info.name)
    candidates = (info.default_subdir, *(reg.subdirs if reg else ()))
    for rel in candidates:
        found = find_subdir(base, rel)
        if found is not None:
            return found
    looked = ", ".join(str(base / rel) for rel in candidates)
    raise DatasetError(
        f"dataset {info.name!r} not found below the data root {base} (from {origin}): looked for {looked}; "
        "pass root= (CLI --dataset-path) to give the dataset's folder itself"
    )


def _check_params(name: str, loader: Loader, params: dict[str, Any]) -> None:
    try:
        sig = inspect.signature(loader)
    except (TypeError, ValueError):
        return
    accepted = [
        p.name for p in list(sig.parameters.values())[2:] if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values()):
        return
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise DatasetError(
            f"dataset {name!r} takes no parameter {', '.join(repr(u) for u in unknown)}; "
            f"it accepts: {', '.join(accepted) or 'none'}"
        )


def open_dataset(
    name: str, root: str | Path | None = None, data_root: str | Path | None = None, **params: Any
) -> Dataset:
    """Open a registered dataset: resolve its folder, scan it, check its files, and return
    a :class:`Dataset` whose ``problems`` list what was found wrong."""
    reg = registration(name)
    info = reg.info
    folder = resolve_root(info, root, data_root)
    try:
        next(iter(folder.iterdir()))
    except StopIteration:
        raise DatasetError(f"{info.name}: dataset folder {folder} is empty") from None
    except OSError as exc:
        raise DatasetError(f"{info.name}: cannot list dataset folder {folder}: {exc.strerror or exc}") from exc
    _check_params(info.name, reg.loader, params)
    try:
        dataset = reg.loader(info, folder, **params)
    except ValueError as exc:  # a bad parameter value
        raise DatasetError(f"{info.name}: {exc}") from exc
    log.info(
        "opened %s at %s: %d samples, %d subjects, %d problems",
        info.name, folder, len(dataset.samples), len(dataset.subjects), len(dataset.problems),
    )
    return dataset
