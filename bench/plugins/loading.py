"""Plugins as the engine handles them: where to build one (:class:`PluginSpec`), its code
fingerprint, and what it is (:func:`describe_plugins`, constructing it in an isolated
worker so that a constructor that crashes, exits or hangs is a named error).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.plugins import registry
from bench.engine.isolation import IsolatedPool, Task, TaskFailure
from bench.plugins import get_params, matcher_hooks
from bench.store import atomic_write, one_line


@dataclass(frozen=True)
class PluginSpec:
    """How to build a plugin in any process: an importable target and its parameters.

    ``target`` is ``package.module:Class`` or ``path/to/file.py:Class``.
    """

    kind: str
    name: str
    target: str
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def resolve(cls, kind: str, name_or_target: str, params: dict[str, Any] | None = None) -> "PluginSpec":
        params = dict(params or {})
        if ":" in name_or_target:
            return cls(kind, name_or_target.rsplit(":", 1)[1], name_or_target, params)
        e = registry.entry(kind, name_or_target)  # an unknown name fails here, before any work
        return cls(kind, e.name, e.target, params)  # availability is checked by describe_plugins

    def build(self) -> Any:
        obj = load_target(self.target)
        try:
            return obj(**self.params)
        except TypeError as exc:
            raise registry.PluginError(f"{self.kind} '{self.name}': bad parameters {self.params}: {exc}") from exc

    def describe(self, instance: Any) -> dict[str, Any]:
        return {
            "name": self.name,
            "target": self.target,
            "version": str(getattr(instance, "version", "unknown")),
            "params": get_params(instance),
            "code_sha256": code_fingerprint(type(instance)),
        }


def code_fingerprint(cls: type) -> str:
    """SHA-256 of the Python source next to a plugin class: every ``.py`` file in the folder
    of the module that defines it (a family's extractor or matcher and its helpers, or a
    single ``path/file.py``). Part of the template cache key and of a run's identity, so
    that changed code is never mistaken for the code that made a stored result, whether or
    not its ``version`` was bumped. "" where the class has no source file."""
    folder = code_folder(cls)
    return folder_fingerprint(folder) if folder is not None else ""


def code_folder(cls: type) -> Path | None:
    """The folder whose Python files :func:`code_fingerprint` covers (None: no source file)."""
    module = sys.modules.get(cls.__module__)
    path = getattr(module, "__file__", None)
    return Path(path).resolve().parent if path else None


def folder_fingerprint(folder: Path) -> str:
    """SHA-256 of the names and contents of the ``.py`` files in ``folder``."""
    h = hashlib.sha256()
    for f in sorted(Path(folder).glob("*.py")):
        h.update(f.name.encode() + b"\0")
        try:
            h.update(f.read_bytes())
        except OSError:
            continue
        h.update(b"\0")
    return h.hexdigest()


#: Module-name prefix of plugins loaded from a file (``path/file.py:Class``).
USER_MODULE_PREFIX = "fingerbench_user_"


def load_target(target: str) -> Any:
    module_name, _, attr = target.rpartition(":")
    if not module_name or not attr:
        raise registry.PluginError(f"'{target}' is not of the form module:Class or file.py:Class")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name).resolve()
            if not path.is_file():
                raise registry.PluginError(f"{path}: no such file")
            mod_name = USER_MODULE_PREFIX + hashlib.sha1(str(path).encode()).hexdigest()[:10]
            module = sys.modules.get(mod_name)
            if module is None:
                spec = importlib.util.spec_from_file_location(mod_name, path)
                assert spec and spec.loader
                module = importlib.util.module_from_spec(spec)
                sys.modules[mod_name] = module
                # compiled from the source every time, never from a cached .pyc: a file edited
                # twice within a second at the same size would pass the .pyc's check and run the
                # old code under the new code's fingerprint
                exec(compile(path.read_bytes(), str(path), "exec", dont_inherit=True), module.__dict__)
        else:
            module = importlib.import_module(module_name)
    except registry.PluginError:
        raise
    except Exception as exc:
        raise registry.PluginError(f"cannot import {module_name}: {type(exc).__name__}: {exc}") from exc
    try:
        return getattr(module, attr)
    except AttributeError as exc:
        where = f"; {registry.classes_hint(module_name)}" if module_name.endswith(".py") else ""
        raise registry.PluginError(f"{module_name} has no attribute {attr}{where}") from exc


def quality_range(instance: Any, name: str) -> list[float]:
    """The declared ``score_range`` of a quality assessor, checked: two finite numbers, low < high."""
    rng = getattr(instance, "score_range", None)
    try:
        lo, hi = (float(v) for v in rng)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise registry.PluginError(f"quality '{name}': score_range must be (lowest, highest), not {rng!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise registry.PluginError(f"quality '{name}': score_range {rng!r} is not two finite numbers, low < high")
    return [lo, hi]


# ------------------------------------------------------------ construction check
def _no_setup() -> None:
    return None


def _describe_items(_state: None, items: list[PluginSpec]) -> list[dict[str, Any]]:
    """Runs in a worker: construct each plugin and describe it; a failure becomes a record."""
    out = []
    for spec in items:
        try:
            _check_available(spec)
            instance = spec.build()
            desc = spec.describe(instance)
            folder = code_folder(type(instance))
            desc["_code_folder"] = str(folder) if folder is not None else ""
            if spec.kind == "extractor":
                desc["template_format"] = getattr(instance, "template_format", "minutiae")
            elif spec.kind == "quality":
                desc["score_range"] = quality_range(instance, spec.name)
            elif spec.kind == "index":
                desc["accepted_formats"] = list(getattr(instance, "accepted_formats", ("minutiae",)))
                desc["work_unit"] = str(getattr(instance, "work_unit", ""))
            else:
                desc["higher_is_better"] = bool(getattr(instance, "higher_is_better", True))
                desc["accepted_formats"] = list(getattr(instance, "accepted_formats", ("minutiae",)))
                desc["hooks"] = matcher_hooks(instance)
            out.append({"description": desc})
        except registry.PluginError as exc:
            out.append({"error": str(exc)})
        except BaseException as exc:  # SystemExit and KeyboardInterrupt too
            out.append({"error": f"{spec.kind} '{spec.name}' could not be constructed: "
                                 f"{type(exc).__name__}: {one_line(str(exc), 500)}"})
    return out


def describe_plugins(specs: list[PluginSpec], timeout: float, cache_dir: Path | None = None) -> list[dict[str, Any]]:
    """Construct each plugin in an isolated worker, ``timeout`` seconds each, and describe it
    (:meth:`PluginSpec.describe`, plus the template format of an extractor, the score
    direction, accepted formats and declared hooks of a matcher, and the score range of a
    quality assessor).

    A constructor that raises, exits, crashes the process or hangs raises PluginError
    naming the plugin and the fault, instead of taking the caller down with it.

    With ``cache_dir``, a description is kept (``CACHE/plugins/``) and reused, without
    constructing the plugin again, while its target, parameters, code (the files its code
    digest covers), interpreter and installed distributions are unchanged: a plugin's
    construction (its imports) is most of the fixed cost of a run whose work is cached.
    """
    found: dict[int, dict[str, Any]] = {}
    for i, spec in enumerate(specs):
        hit = _cached_description(spec, cache_dir) if cache_dir is not None else None
        if hit is not None:
            found[i] = hit
    todo = [i for i in range(len(specs)) if i not in found]
    if todo:
        for i, desc in zip(todo, _construct_and_describe([specs[i] for i in todo], timeout)):
            folder = desc.pop("_code_folder", "")
            found[i] = desc
            if cache_dir is not None:
                _keep_description(specs[i], desc, folder, cache_dir)
    return [found[i] for i in range(len(specs))]


def _environment_digest() -> str:
    """The interpreter and the installed distributions (names and versions), cheaply: the
    names of the ``*.dist-info`` / ``*.egg-info`` entries on the import path."""
    names = [sys.version, sys.executable]
    for entry in sys.path:
        try:
            names.extend(sorted(n for n in os.listdir(entry or ".") if n.endswith((".dist-info", ".egg-info"))))
        except OSError:
            continue
    return hashlib.sha256("\0".join(names).encode()).hexdigest()


def _description_path(spec: PluginSpec, cache_dir: Path) -> Path:
    blob = json.dumps({"kind": spec.kind, "target": spec.target, "params": spec.params,
                       "target_file": _target_file_digest(spec.target), "environment": _environment_digest()},
                      sort_keys=True, default=str)
    return Path(cache_dir) / "plugins" / f"{hashlib.sha256(blob.encode()).hexdigest()[:32]}.json"


def _target_file_digest(target: str) -> str:
    """For ``path/file.py:Class``: the file's own digest (its folder may hold other code)."""
    module = target.rpartition(":")[0]
    if module.endswith(".py"):
        try:
            return hashlib.sha256(Path(module).resolve().read_bytes()).hexdigest()
        except OSError:
            return "unreadable"
    return ""


def _cached_description(spec: PluginSpec, cache_dir: Path) -> dict[str, Any] | None:
    path = _description_path(spec, cache_dir)
    try:
        entry = json.loads(path.read_text())
        desc, folder = entry["description"], entry["code_folder"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(desc, dict) or not desc.get("code_sha256") or not folder:
        return None
    if folder_fingerprint(Path(folder)) != desc["code_sha256"]:  # the code changed
        return None
    return desc


def _keep_description(spec: PluginSpec, desc: dict[str, Any], folder: str, cache_dir: Path) -> None:
    if not folder or not desc.get("code_sha256"):
        return
    path = _description_path(spec, cache_dir)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps({"description": desc, "code_folder": folder}, sort_keys=True).encode())
    except OSError:
        pass  # a cache that cannot be written costs time, not results


def _check_available(spec: PluginSpec) -> None:
    """A registered plugin's own availability check (missing package, binary), run where
    it is constructed, so that its reason, not an import error, is what the user reads."""
    try:
        e = registry.entry(spec.kind, spec.name)
    except registry.PluginError:
        return  # a module:Class or file.py:Class target
    if e.target != spec.target:
        return
    ok, reason = e.availability()
    if not ok:
        raise registry.PluginError(f"{spec.kind} '{spec.name}' is unavailable: {reason}")


def _construct_and_describe(specs: list[PluginSpec], timeout: float) -> list[dict[str, Any]]:
    pool = IsolatedPool(1, _no_setup, (), _describe_items, timeout_per_item=timeout)
    found: dict[int, dict[str, Any]] = {}
    for task, result in pool.run([Task(i, [spec], attempt_split=False) for i, spec in enumerate(specs)]):
        spec = specs[task.key]
        if isinstance(result, TaskFailure):
            raise registry.PluginError(f"{spec.kind} '{spec.name}' could not be constructed: {result.message}")
        if "error" in result[0]:
            raise registry.PluginError(result[0]["error"])
        found[task.key] = result[0]["description"]
    return [found[i] for i in range(len(specs))]
