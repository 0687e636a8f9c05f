"""The template cache: one extraction outcome per (image content, extractor identity).

An entry is ``<image sha256>.json`` (the record) and, when extraction succeeded,
``<image sha256>.npz`` (the template), in ``CACHE/templates/<extractor key>/``. The record
names what it was made from (the image digest and the extractor key), holds the SHA-256
of the template file and a checksum of its own fields. An entry that is damaged (random
bytes, truncated, empty), edited, made by an older FingerBench or copied from another
image fails :func:`read_entry` with the file and the fault named; callers then recompute
it instead of using it.

Which failures are cached: only outcomes the extractor gives every time for the same
image (:data:`CACHED_FAILURES`). Crashes, timeouts and transient exceptions (for example a
``MemoryError`` under a memory limit) are not cached: the next run tries again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from bench.store import EXTRACTION_OK, atomic_write

#: Layout version of a cache record; records of another version are recomputed.
CACHE_FORMAT = 2

#: Failed extraction statuses that are cached, and why each is kept.
CACHED_FAILURES = {
    "fte": "the extractor declared a failure to enrol",
    "unreadable": "the image file cannot be decoded",
    "error": "the extractor raised an exception that is not transient",
}

#: Exceptions of a plugin that say nothing permanent about the image.
TRANSIENT_EXCEPTIONS: tuple[type[BaseException], ...] = (MemoryError, KeyboardInterrupt)

#: Fields of an extraction outcome that the record keeps.
OUTCOME_FIELDS = ("status", "error", "n_minutiae", "template_bytes", "seconds", "template_sha256")


class CacheEntryError(Exception):
    """A cache entry cannot be trusted; the message names the file and the fault."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _checksum(record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "record_sha256"}
    return sha256_bytes(json.dumps(body, sort_keys=True, default=str).encode())


def is_cacheable(outcome: dict[str, Any]) -> bool:
    """Whether an extraction outcome is kept for later runs (see the module docstring)."""
    status = outcome.get("status")
    if status == EXTRACTION_OK:
        return bool(outcome.get("template_sha256"))
    return status in CACHED_FAILURES and not outcome.get("transient")


def write_record(rec_path: Path, outcome: dict[str, Any], image_sha256: str, extractor_key: str) -> None:
    """Write the record of one outcome (its template file is already in place)."""
    record: dict[str, Any] = {"cache_format": CACHE_FORMAT, "image_sha256": image_sha256,
                              "extractor": extractor_key}
    record.update({k: outcome.get(k, "") for k in OUTCOME_FIELDS})
    record["record_sha256"] = _checksum(record)
    atomic_write(Path(rec_path), json.dumps(record, sort_keys=True))


def read_entry(npz_path: Path, rec_path: Path, image_sha256: str, extractor_key: str) -> dict[str, Any]:
    """The record of a trustworthy entry, or CacheEntryError naming the file and the fault.

    Checks the record's format, checksum, image digest and extractor, that a failure is
    of a cached kind, and for a success that the template file's SHA-256 is the recorded one.
    """
    try:
        text = Path(rec_path).read_text()
    except FileNotFoundError as exc:
        raise CacheEntryError(f"{rec_path}: missing") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise CacheEntryError(f"{rec_path}: unreadable ({exc})") from exc
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CacheEntryError(f"{rec_path}: not valid JSON ({exc})") from exc
    if not isinstance(record, dict):
        raise CacheEntryError(f"{rec_path}: not a cache record")
    if record.get("cache_format") != CACHE_FORMAT:
        raise CacheEntryError(f"{rec_path}: cache format {record.get('cache_format')!r}, not {CACHE_FORMAT} "
                              f"(made by another version of FingerBench)")
    if record.get("record_sha256") != _checksum(record):
        raise CacheEntryError(f"{rec_path}: checksum does not match the record's content (edited or damaged)")
    if record.get("image_sha256") != image_sha256:
        raise CacheEntryError(f"{rec_path}: made from another image (sha256 {record.get('image_sha256')}, "
                              f"expected {image_sha256})")
    if record.get("extractor") != extractor_key:
        raise CacheEntryError(f"{rec_path}: made by another extractor ({record.get('extractor')}, "
                              f"expected {extractor_key})")
    status = record.get("status")
    if status == EXTRACTION_OK:
        try:
            data = Path(npz_path).read_bytes()
        except FileNotFoundError as exc:
            raise CacheEntryError(f"{npz_path}: template file missing") from exc
        except OSError as exc:
            raise CacheEntryError(f"{npz_path}: unreadable ({exc})") from exc
        if sha256_bytes(data) != record.get("template_sha256"):
            raise CacheEntryError(f"{npz_path}: template file damaged or replaced "
                                  f"(SHA-256 differs from the one in {Path(rec_path).name})")
    elif status not in CACHED_FAILURES:
        raise CacheEntryError(f"{rec_path}: status {status!r} is not an outcome that is cached")
    return record


def default_cache_dir() -> Path:
    env = os.environ.get("FINGERBENCH_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fingerbench"


def extractor_key(desc: dict[str, Any]) -> str:
    """Cache key of an extractor: name, target, version, parameters and code fingerprint."""
    blob = json.dumps({k: desc.get(k, "") for k in ("name", "target", "version", "params", "code_sha256")},
                      sort_keys=True, default=str)
    return f"{desc['name']}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


def cached_template_path(manifest: dict[str, Any], sample_id: str) -> Path | None:
    """Where the run's template of ``sample_id`` is cached, or None if it is not there.

    Reports use this to draw minutiae; the cache may have been cleared since the run, and
    an entry that fails its checks (see :func:`bench.store.template_cache.read_entry`) is not used.
    """
    digest = manifest.get("dataset", {}).get("files_sha256", {}).get(sample_id)
    cache_dir = manifest.get("settings", {}).get("cache_dir")
    if not digest or not cache_dir:
        return None
    key = extractor_key(manifest["extractor"])
    path = Path(cache_dir) / "templates" / key / f"{digest}.npz"
    try:
        entry = read_entry(path, path.with_suffix(".json"), digest, key)
    except CacheEntryError:
        return None
    return path if entry["status"] == EXTRACTION_OK else None
