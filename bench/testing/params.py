"""Checks every plugin shares: its attributes and its parameters."""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path
from typing import Any

from bench.plugins import get_params
from bench.plugins.loading import USER_MODULE_PREFIX
from bench.testing.results import FAIL, PASS, WARN, ConformanceReport


def describe(plugin: Any) -> str:
    """``module.Class`` of a plugin instance (``file.py:Class`` for one loaded from a file),
    for the report's heading."""
    cls = type(plugin)
    module = sys.modules.get(cls.__module__)
    source = getattr(module, "__file__", None)
    if cls.__module__.startswith(USER_MODULE_PREFIX) and source:
        return f"{Path(source).name}:{cls.__qualname__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def check_attributes(report: ConformanceReport, plugin: Any, expected: dict[str, type]) -> None:
    """The class attributes the contract names, with their types."""
    problems = []
    for name, kind in expected.items():
        if not hasattr(plugin, name):
            problems.append(f"no attribute '{name}'")
            continue
        value = getattr(plugin, name)
        if kind is tuple:
            ok = isinstance(value, (tuple, list)) and bool(value) and all(isinstance(v, str) for v in value)
            if not ok:
                problems.append(f"'{name}' is {value!r}, not a non-empty tuple of strings")
        elif not isinstance(value, kind) or (kind is str and not value):
            problems.append(f"'{name}' is {value!r}, not a{' non-empty' if kind is str else ''} {kind.__name__}")
    report.add("attributes", FAIL if problems else PASS,
               "; ".join(problems) if problems else ", ".join(f"{k}={getattr(plugin, k)!r}" for k in expected))


def check_parameters(report: ConformanceReport, plugin: Any) -> None:
    """Every ``__init__`` keyword is stored unchanged as an attribute of the same name,
    so :func:`bench.plugins.get_params` records the values a run used."""
    try:
        sig = inspect.signature(type(plugin).__init__)
    except (TypeError, ValueError):
        report.add("get-params", WARN, "the signature of __init__ cannot be read")
        return
    missing, variadic = [], []
    for name, p in sig.parameters.items():
        if name == "self":
            continue
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            variadic.append(("*" if p.kind == p.VAR_POSITIONAL else "**") + name)
        elif not hasattr(plugin, name):
            missing.append(name)
    params = get_params(plugin)
    try:
        json.dumps(params)
        unjsonable = ""
    except (TypeError, ValueError) as exc:
        unjsonable = str(exc)
    if missing:
        report.add("get-params", FAIL, f"__init__ parameters not stored as attributes of the same name: "
                                       f"{', '.join(missing)} (get_params would record their defaults)")
    elif variadic:
        report.add("get-params", WARN, f"__init__ takes {', '.join(variadic)}: such parameters are not recorded; "
                                       f"make every parameter an explicit keyword")
    elif unjsonable:
        report.add("get-params", WARN, f"parameters are not JSON values ({unjsonable}); they are recorded as text")
    else:
        shown = ", ".join(f"{k}={v!r}" for k, v in params.items())
        report.add("get-params", PASS, (shown if len(shown) <= 100 else f"{len(params)} parameters: "
                                        + ", ".join(params)[:100] + "...") if params else "no parameters")
