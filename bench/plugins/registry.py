"""Plugin discovery through entry points, loaded lazily.

Built-in extractors, matchers, quality assessors and indexes are registered in
``pyproject.toml`` under the groups ``fingerbench.extractors``, ``fingerbench.matchers``,
``fingerbench.quality`` and ``fingerbench.indexes``, exactly like a third-party
package would register its own, so there is one code path. Listing plugins imports
nothing heavy; a plugin's module is imported only when it is used (or when its
availability is checked), and an import failure is reported as "unavailable" with the
reason rather than raised.
"""

from __future__ import annotations

import difflib
import importlib.metadata as md
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

GROUPS = {
    "extractor": "fingerbench.extractors",
    "matcher": "fingerbench.matchers",
    "quality": "fingerbench.quality",
    "index": "fingerbench.indexes",
}


class PluginError(LookupError):
    """Unknown, duplicated or unloadable plugin."""


@dataclass(frozen=True)
class PluginEntry:
    kind: str
    name: str
    target: str  # "module:attr"
    distribution: str | None
    _ep: md.EntryPoint

    def load(self) -> Any:
        """Import and return the plugin class (or factory)."""
        try:
            return self._ep.load()
        except Exception as exc:  # ImportError or anything the module raises
            raise PluginError(
                f"{self.kind} '{self.name}' cannot be loaded from {self.target}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    def availability(self) -> tuple[bool, str]:
        """(True, "") or (False, reason); never raises."""
        try:
            cls = self.load()
        except PluginError as exc:
            cause = exc.__cause__
            if isinstance(cause, ModuleNotFoundError) and cause.name:
                own = self.target.split(":")[0]
                if own == cause.name or own.startswith(cause.name + "."):
                    return False, f"module {own} is not installed"
                return False, f"missing package '{cause.name}' (install the extra that provides it)"
            return False, str(exc)
        check = getattr(cls, "check_available", None)
        if callable(check):
            try:
                reason = check()
            except Exception as exc:
                return False, f"availability check failed: {exc}"
            if reason:
                return False, str(reason)
        return True, ""


def _entries(kind: str) -> dict[str, PluginEntry]:
    group = GROUPS[kind]
    found: dict[str, PluginEntry] = {}
    for ep in md.entry_points(group=group):
        dist = getattr(getattr(ep, "dist", None), "name", None)
        if ep.name in found and found[ep.name].target != ep.value:
            raise PluginError(
                f"two packages register the {kind} '{ep.name}': "
                f"{found[ep.name].target} ({found[ep.name].distribution}) and {ep.value} ({dist})"
            )
        found[ep.name] = PluginEntry(kind, ep.name, ep.value, dist, ep)
    return found


def names(kind: str) -> list[str]:
    return sorted(_entries(kind))


def classes_in_file(path: str | Path) -> list[str]:
    """Names of the classes a Python file defines at top level, read without importing it."""
    import ast

    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8", errors="replace"))
    except (OSError, SyntaxError, ValueError):
        return []
    return [node.name for node in tree.body if isinstance(node, ast.ClassDef)]


def classes_hint(path: str | Path) -> str:
    """'it defines A, B' (or that it defines no class), for messages about a plugin file."""
    found = classes_in_file(path)
    return f"it defines {', '.join(found)}" if found else "it defines no class"


def check_file_target(kind: str, target: str) -> None:
    """Refuse ``file.py:Name`` early (before any work) when the file is missing or does not bind
    ``Name`` at top level, listing the classes it defines; read without importing it."""
    import ast

    file, _, attr = target.rpartition(":")
    if not file.endswith(".py"):
        return
    path = Path(file)
    if not path.is_file():
        raise PluginError(f"{kind} '{target}': {file}: no such file")
    try:
        tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, SyntaxError, ValueError):
        return  # the import reports it, with the line
    bound: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            if any(a.name == "*" for a in node.names):
                return
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for t in node.targets if isinstance(node, ast.Assign) else [node.target]:
                bound.update(n.id for n in ast.walk(t) if isinstance(n, ast.Name))
        else:
            return  # conditional or computed definitions: leave it to the import
    if attr not in bound:
        raise PluginError(f"{kind} '{target}': {file} has no class {attr}; {classes_hint(path)}")


def file_hint(kind: str, name: str) -> str | None:
    """The message for a plugin given as a file without ``:Class``, or None if ``name`` is no file."""
    path = Path(name)
    if not (name.endswith(".py") or path.is_file()):
        return None
    if not path.is_file():
        return f"{kind} '{name}': no such file"
    found = classes_in_file(path)
    example = f"{name}:{found[0] if found else 'Class'}"
    return f"{kind} '{name}' is a file: name the class too, as {example} ({classes_hint(path)})"


def entry(kind: str, name: str) -> PluginEntry:
    entries = _entries(kind)
    if name in entries:
        return entries[name]
    hint = file_hint(kind, name)
    if hint:
        raise PluginError(hint)
    msg = f"unknown {kind} '{name}'"
    close = difflib.get_close_matches(name, list(entries), n=3, cutoff=0.5)
    if close:
        msg += f"; did you mean {', '.join(repr(c) for c in close)}?"
    elif entries:
        msg += f"; known: {', '.join(sorted(entries))}"
    else:
        msg += f"; no {kind} is registered (is the package installed with 'pip install -e .'?)"
    raise PluginError(msg)


def create(kind: str, name: str, params: dict[str, Any] | None = None) -> Any:
    """Instantiate the plugin ``name`` with keyword parameters ``params``."""
    e = entry(kind, name)
    ok, reason = e.availability()
    if not ok:
        raise PluginError(f"{kind} '{name}' is unavailable: {reason}")
    cls = e.load()
    try:
        return cls(**(params or {}))
    except TypeError as exc:
        raise PluginError(f"{kind} '{name}': bad parameters {params}: {exc}") from exc


def parse_params(items: list[str] | None) -> dict[str, Any]:
    """Parse ``key=value`` strings; values are read as JSON when they parse as JSON."""
    import json

    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise PluginError(f"parameter '{item}' is not of the form key=value")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out
