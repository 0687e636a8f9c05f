"""Helpers shared by the loaders: listing a folder, finding sub-folders whatever their
case, and turning per-file check results into samples and problems."""

from __future__ import annotations

import errno
import logging
import os
import stat
from dataclasses import replace
from pathlib import Path
from typing import Iterable

from bench.datasets.base import DatasetError, Problem, Sample, sha256_file
from bench.datasets.imagecheck import check_files

log = logging.getLogger(__name__)

#: File name endings the loaders treat as images (lower case, with the dot).
IMAGE_EXTENSIONS = (".tif", ".tiff", ".png", ".bmp", ".jpg", ".jpeg", ".pgm", ".pnm", ".jp2", ".wsq")


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


#: Endings of the files a dataset is made of (images and template files), lower case.
DATA_EXTENSIONS = IMAGE_EXTENSIONS + (".iso", ".ist", ".ansi", ".fmr", ".xyt", ".min", ".bin")


def list_files(root: Path, recursive: bool = False, problems: list[Problem] | None = None) -> list[Path]:
    """Regular files under ``root`` (sorted; hidden files and folders skipped).

    What cannot be a sample is reported in ``problems`` (else logged), naming the entry,
    and the listing goes on: a symbolic link in a loop or to nothing, an entry that
    cannot be read, a folder named like an image or template file.
    """
    out: list[Path] = []
    found: list[Problem] = []
    try:
        if recursive:
            for dirpath, dirnames, filenames in os.walk(root, onerror=lambda exc: found.append(_unreadable(exc))):
                for d in sorted(dirnames):
                    if not d.startswith(".") and d.lower().endswith(DATA_EXTENSIONS):
                        found.append(_folder_problem(Path(dirpath) / d))
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    if not name.startswith("."):
                        path = Path(dirpath) / name
                        problem = _file_problem(path)
                        (found.append(problem) if problem else out.append(path))
        else:
            with os.scandir(root) as it:
                for entry in it:
                    if entry.name.startswith("."):
                        continue
                    path = Path(entry.path)
                    problem = _file_problem(path)
                    if problem is None:
                        out.append(path)
                    elif problem.kind != "not_a_file" or entry.name.lower().endswith(DATA_EXTENSIONS):
                        found.append(problem)
    except OSError as exc:
        raise DatasetError(f"{root}: cannot list the folder ({exc.strerror or exc})") from None
    found.sort(key=lambda p: p.path)
    if problems is None:
        for p in found:
            log.warning("%s", p)
    else:
        problems.extend(found)
    return sorted(out)


def _file_problem(path: Path) -> Problem | None:
    """None for a regular file (or a link to one), else what is wrong with the entry."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ENOENT and path.is_symlink():
            return Problem("unreadable", str(path), f"{path.name}: a symbolic link to nothing ({os.readlink(path)}); ignored")
        return _unreadable(exc, path)
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return _folder_problem(path)
    return Problem("unreadable", str(path), f"{path.name}: not a regular file; ignored")


def _folder_problem(path: Path) -> Problem:
    return Problem("not_a_file", str(path), f"{path.name}: a folder named like a data file, not a file; ignored")


def _unreadable(exc: OSError, path: Path | None = None) -> Problem:
    where = path if path is not None else Path(exc.filename or "?")
    if exc.errno == errno.ELOOP:
        why = "a symbolic link in a loop (it never reaches a file)"
    else:
        why = f"cannot be read ({exc.strerror or exc})"
    return Problem("unreadable", str(where), f"{where.name}: {why}; ignored")


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
    if level != "none":
        for sid, problem in same_content(samples).items():
            found.setdefault(sid, problem)
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


def same_content(samples: list[Sample]) -> dict[str, Problem]:
    """Samples whose file holds the same bytes as an earlier sample's (by sample order):
    one impression stored under two ids would count as a perfect genuine match, or as an
    impostor pair of identical images. Only files of equal size are hashed."""
    by_size: dict[int, list[Sample]] = {}
    for s in samples:
        if s.path is None:
            continue
        try:
            by_size.setdefault(os.stat(s.path).st_size, []).append(s)
        except OSError:
            continue  # reported by the file checks
    out: dict[str, Problem] = {}
    for group in by_size.values():
        if len(group) < 2:
            continue
        first: dict[str, Sample] = {}
        for s in group:
            try:
                digest = sha256_file(s.path)  # type: ignore[arg-type]
            except OSError:
                continue
            if digest in first:
                other = first[digest]
                out[s.id] = Problem("same_content", str(s.path),
                                    f"{s.path.name}: the same bytes as {other.path.name} (sample {other.id}); "  # type: ignore[union-attr]
                                    f"sample {s.id} is a copy, not another impression")
            else:
                first[digest] = s
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
