"""Helpers shared by the loaders: listing a folder, finding sub-folders whatever their
case, and turning per-file check results into samples and problems."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Iterable

from bench.datasets.base import DatasetError, Problem, Sample
from bench.datasets.imagecheck import check_files

#: File name endings the loaders treat as images (lower case, with the dot).
IMAGE_EXTENSIONS = (".tif", ".tiff", ".png", ".bmp", ".jpg", ".jpeg", ".pgm", ".pnm", ".jp2", ".wsq")


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def list_files(root: Path, recursive: bool = False) -> list[Path]:
    """Regular files under ``root`` (sorted; hidden files and folders skipped)."""
    out: list[Path] = []
    if recursive:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            out.extend(Path(dirpath) / n for n in sorted(filenames) if not n.startswith("."))
        return out
    with os.scandir(root) as it:
        for entry in it:
            if not entry.name.startswith(".") and entry.is_file():
                out.append(Path(entry.path))
    return sorted(out)


def find_subdir(base: Path, relative: str) -> Path | None:
    """``base / relative`` where each component may differ in case; None if absent."""
    current = base
    for part in Path(relative).parts:
        candidate = current / part
        if candidate.is_dir():
            current = candidate
            continue
        try:
            matches = [e for e in os.scandir(current) if e.is_dir() and e.name.lower() == part.lower()]
        except OSError:
            return None
        if not matches:
            return None
        current = Path(sorted(m.path for m in matches)[0])
    return current


def require_dir(path: Path, what: str) -> Path:
    if not path.exists():
        raise DatasetError(f"{what} {path} does not exist")
    if not path.is_dir():
        raise DatasetError(f"{what} {path} is not a folder")
    return path


def validated(
    samples: list[Sample],
    problems: list[Problem],
    expected_size: tuple[int, int] | None,
    level: str,
) -> list[Sample]:
    """Check the present files of ``samples``; append the problems found and mark the
    samples concerned with ``attributes["problem"]`` (they stay in the list)."""
    found = check_files([(s.id, s.path) for s in samples if s.path is not None], expected_size, level)
    if not found:
        return samples
    out = []
    for s in samples:
        problem = found.get(s.id)
        if problem is None:
            out.append(s)
        else:
            problems.append(problem)
            out.append(replace(s, attributes={**s.attributes, "problem": problem.kind}))
    return out


def as_bool(value: object, name: str) -> bool:
    """A boolean parameter, also from the strings a command line gives."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{name} must be true or false, not {value!r}")


def as_list(value: object, name: str) -> list[str] | None:
    """A list parameter: None, a list, or a comma-separated string."""
    if value is None:
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (int, float)):
        return [str(value)]
    try:
        return [str(v) for v in value]  # type: ignore[union-attr]
    except TypeError:
        raise ValueError(f"{name} must be a list, not {value!r}") from None


def as_size(value: object, name: str) -> tuple[int, int] | None:
    """(width, height) from a pair or a "WxH" string."""
    if value is None:
        return None
    parts = value.lower().split("x") if isinstance(value, str) else value
    try:
        width, height = (int(v) for v in parts)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be (width, height) or 'WxH', not {value!r}") from None
    if width <= 0 or height <= 0:
        raise ValueError(f"{name} must be positive, not {value!r}")
    return width, height


def describe_names(paths: Iterable[Path], limit: int = 5) -> str:
    names = [p.name for p in paths]
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")
