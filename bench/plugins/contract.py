"""The plugin contract checked on what plugins return, at run time and in the kit.

:mod:`bench.plugins` says what an extractor and a matcher offer; this module checks
what they hand back: a :class:`~bench.template.Template` whose minutiae lie in the
image and whose angles are radians, a score that is a real number (not a string, not a
bool), and a ``compare_many`` result that is one number per reference. A violation
raises :class:`ContractError`, whose message says what was returned and what was
expected, so the runner can refuse it by name instead of storing a wrong value.

:func:`plugin_location` finds the plugin's own file and line for an error, so a run
that stops on a repeated interface error points at the code to fix.
"""

from __future__ import annotations

import inspect
import math
import os
import re
import traceback
from numbers import Real
from typing import Any, Callable

import numpy as np

from bench.plugins.registry import PluginError
from bench.template import Template

#: Tolerance, in pixels, for minutiae just outside the image (sub-pixel positions).
EDGE_TOLERANCE_PX = 1.0


class PluginInterfaceError(PluginError):
    """A plugin broke the plugin contract the same way on the first items of a run."""


class ContractError(TypeError):
    """A plugin returned something the plugin contract does not allow."""


def _type_name(value: Any) -> str:
    t = type(value)
    return t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def check_template(template: Any, image_shape: tuple[int, int] | None = None) -> Template:
    """``template`` if it keeps the contract, else :class:`ContractError`.

    ``image_shape`` (rows, columns) is that of the image it was extracted from; minutiae
    must lie in it (within :data:`EDGE_TOLERANCE_PX`), as positions are pixels from the
    top-left corner.
    """
    if not isinstance(template, Template):
        raise ContractError(f"extract() returned {_type_name(template)}, not a bench.template.Template")
    m = template.minutiae
    if m.size:
        angle = m["angle"].astype(np.float64)
        if angle.min() < 0 or angle.max() > 2 * math.pi + 1e-4:
            raise ContractError(
                f"minutia angles range from {angle.min():.4g} to {angle.max():.4g}; angles are radians in "
                f"[0, 2*pi) (values above 2*pi look like degrees: convert them with numpy.radians)")
        width, height = (image_shape[1], image_shape[0]) if image_shape is not None else (template.width,
                                                                                          template.height)
        x, y = m["x"].astype(np.float64), m["y"].astype(np.float64)
        tol = EDGE_TOLERANCE_PX
        outside = (x < -tol) | (y < -tol) | (x > width - 1 + tol) | (y > height - 1 + tol)
        if outside.any():
            i = int(np.flatnonzero(outside)[0])
            raise ContractError(
                f"{int(outside.sum())} of {m.size} minutiae lie outside the {width}x{height} image (for example "
                f"x={x[i]:.6g}, y={y[i]:.6g}); positions are pixels from the top-left corner")
    return template


def check_score(score: Any, call: str = "compare()") -> float:
    """``score`` as a float if it is a real number (not a bool, not a string), else
    :class:`ContractError`. NaN and infinities are returned as they are (the runner
    records them as failed comparisons)."""
    if isinstance(score, (bool, np.bool_)) or not isinstance(score, (Real, np.integer, np.floating)):
        shown = repr(score) if isinstance(score, (str, bytes, bool, np.bool_)) else _type_name(score)
        raise ContractError(f"{call} returned {shown}, not a number (int or float)")
    return float(score)


def check_scores(scores: Any, n: int) -> np.ndarray:
    """The result of ``compare_many`` as a 1-D float array of ``n`` scores, or
    :class:`ContractError` (strings, bools, a 2-D array and a wrong count are refused)."""
    if isinstance(scores, (str, bytes)):
        raise ContractError(f"compare_many() returned {scores!r}, not {n} numbers")
    try:
        arr = np.asarray(scores)
    except Exception as exc:  # ragged sequences and the like
        raise ContractError(f"compare_many() returned {_type_name(scores)} that is not an array ({exc})") from None
    if arr.dtype.kind not in "iuf":
        raise ContractError(f"compare_many() returned an array of {arr.dtype} ({_type_name(scores)}), "
                            f"not of numbers (int or float)")
    if arr.shape != (n,):
        raise ContractError(f"compare_many() returned an array of shape {arr.shape} for {n} references; "
                            f"expected shape ({n},)")
    return arr.astype(np.float64)


def plugin_location(exc: BaseException | None, plugin: Any, method: str) -> str:
    """``file:line`` in the plugin's own code where ``exc`` arose, or where ``method``
    is defined when the error arose in the harness (a wrong return value, a wrong
    signature); "" when neither is known."""
    func = getattr(type(plugin), method, None)
    own_file = _source_file(func) or _source_file(type(plugin))
    if exc is not None and exc.__traceback__ is not None and own_file:
        frames = traceback.extract_tb(exc.__traceback__)
        own_dir = os.path.dirname(own_file)
        for frame in reversed(frames):
            if os.path.normcase(os.path.abspath(frame.filename)) == own_file:
                return f"{frame.filename}:{frame.lineno}"
        for frame in reversed(frames):
            if os.path.dirname(os.path.abspath(frame.filename)) == own_dir:
                return f"{frame.filename}:{frame.lineno}"
    target: Callable | type | None = func if func is not None else type(plugin)
    try:
        _, line = inspect.getsourcelines(target)  # type: ignore[arg-type]
    except (OSError, TypeError):
        return own_file or ""
    return f"{own_file}:{line}" if own_file else ""


def _source_file(obj: Any) -> str:
    if obj is None:
        return ""
    try:
        path = inspect.getsourcefile(obj)
    except TypeError:
        return ""
    return os.path.normcase(os.path.abspath(path)) if path else ""


# -- the run-start interface check -------------------------------------------------------------
#: Key of a worker's record that carries an interface error (removed before it is stored).
INTERFACE_KEY = "interface_error"
#: Results a run looks at before it trusts a plugin's interface.
FIRST_ITEMS = 3


def is_interface_error(exc: BaseException) -> bool:
    """Is ``exc`` a sign of a broken interface (a wrong signature, a wrong return value,
    a Template built wrongly) rather than of one bad input?"""
    from bench.formats.records import FormatError
    from bench.template import TemplateError

    if isinstance(exc, FormatError):  # a malformed input file
        return False
    return isinstance(exc, (TypeError, AttributeError, TemplateError))


class InterfaceWatch:
    """Watches the first results of a run's stage (extraction or comparison).

    When each of the first :data:`FIRST_ITEMS` results (at least two) of one kind of call
    (``channel``: ``compare`` and ``compare_many`` are watched apart) failed with an
    interface error, as a rule the same one each time, the plugin does not keep the
    contract and every other item would fail the same way: :meth:`see` then raises
    ``error_type`` with one message naming the plugin's file and line, instead of a
    warning per item and a meaningless EER. Until a channel is judged its results are
    held back (:meth:`see` returns those that may be stored).
    """

    def __init__(self, n_items: int, describe: str, error_type: type[Exception], hint: str = "") -> None:
        self.n_items = n_items
        self.describe = describe
        self.error_type = error_type
        self.hint = hint
        self.seen: dict[str, list[str]] = {}
        self.held: dict[str, list[Any]] = {}
        self.judged: set[str] = set()

    def see(self, result: Any, interface_errors: list[str], channel: str = "") -> list[Any]:
        """Take one result (with the interface errors found in it); return the results
        that can be stored now, or raise when the first results show a broken interface."""
        needed = min(FIRST_ITEMS, self.n_items)
        if channel in self.judged or needed < 2:
            return [result]
        self.held.setdefault(channel, []).append(result)
        seen = self.seen.setdefault(channel, [])
        seen.extend(interface_errors[:1] or [""])
        if len(seen) < needed:
            return []
        self.judged.add(channel)
        if all(seen):
            distinct = list({_signature(m): m for m in seen}.values())
            how = "the same way" if len(distinct) == 1 else "with interface errors"
            also = "".join(f"; also: {m}" for m in distinct[1:])
            raise self.error_type(
                f"{self.describe} failed {how} on each of its first {len(seen)} items, so it does not keep "
                f"the plugin contract, and the run stops: {distinct[0]}{also}" + (f" ({self.hint})" if self.hint else ""))
        return self.held.pop(channel)

    def flush(self) -> list[Any]:
        """Results still held when the stage ended with fewer items than needed."""
        out = [r for held in self.held.values() for r in held]
        self.held.clear()
        return out


def _signature(message: str) -> str:
    """An error message with its numbers blanked: the same mistake on other data."""
    return re.sub(r"[-+]?\d+(\.\d+)?([eE][-+]?\d+)?", "#", message)


def pop_interface_errors(records: list[dict[str, Any]]) -> list[str]:
    """Remove the interface errors from a worker's records; return them when every
    record has one (else an empty list: the plugin worked on some items)."""
    found = [r.pop(INTERFACE_KEY, "") for r in records]
    return found if found and all(found) else []
