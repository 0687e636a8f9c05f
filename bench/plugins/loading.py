"""Plugins as the engine handles them: where to build one (:class:`PluginSpec`), its code
fingerprint, and what it is (:func:`describe_plugins`, constructing it in an isolated
worker so that a constructor that crashes, exits or hangs is a named error).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.plugins import registry
from bench.engine.isolation import IsolatedPool, Task, TaskFailure
from bench.plugins import get_params, matcher_hooks
from bench.store import one_line


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
        e = registry.entry(kind, name_or_target)
        ok, reason = e.availability()
        if not ok:
            raise registry.PluginError(f"{kind} '{e.name}' is unavailable: {reason}")
        return cls(kind, e.name, e.target, params)

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
    module = sys.modules.get(cls.__module__)
    path = getattr(module, "__file__", None)
    if not path:
        return ""
    h = hashlib.sha256()
    for f in sorted(Path(path).resolve().parent.glob("*.py")):
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
                spec.loader.exec_module(module)
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


# ------------------------------------------------------------ construction check
def _no_setup() -> None:
    return None


def _describe_items(_state: None, items: list[PluginSpec]) -> list[dict[str, Any]]:
    """Runs in a worker: construct each plugin and describe it; a failure becomes a record."""
    out = []
    for spec in items:
        try:
            instance = spec.build()
            desc = spec.describe(instance)
            if spec.kind == "extractor":
                desc["template_format"] = getattr(instance, "template_format", "minutiae")
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


def describe_plugins(specs: list[PluginSpec], timeout: float) -> list[dict[str, Any]]:
    """Construct each plugin in an isolated worker, ``timeout`` seconds each, and describe it
    (:meth:`PluginSpec.describe`, plus the template format of an extractor, and the score
    direction, accepted formats and declared hooks of a matcher).

    A constructor that raises, exits, crashes the process or hangs raises PluginError
    naming the plugin and the fault, instead of taking the caller down with it.
    """
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
