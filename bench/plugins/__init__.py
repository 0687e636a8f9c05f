"""The plugin interface: what an extractor, a matcher, a quality assessor and an index must offer.

Plugins need not inherit from anything: they satisfy these Protocols structurally.
Hyper-parameters are explicit keyword arguments of ``__init__``, stored unchanged as
attributes of the same name (as in scikit-learn), so :func:`get_params` can read them
back and the harness can record them with every result.

An extractor signals a failure to enrol by raising :class:`FailureToEnrol` (any other
exception is also recorded as a failure, with its traceback). A matcher returns a
similarity score for two templates; ``higher_is_better`` says which way it points. A
quality assessor gives an image a quality score (higher is better, as in ISO/IEC 29794-1),
and raises :class:`QualityNotApplicable` for an image it is not defined for.
An index (1:N pre-selection) is built from a gallery's templates and returns, per probe, the
few gallery templates a matcher should compare.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

from bench.template import Template


class FailureToEnrol(Exception):
    """The extractor could not make a usable template from this image."""


class ComparisonFailed(Exception):
    """The matcher could not compare these two templates."""


class QualityNotApplicable(Exception):
    """The quality algorithm is not defined for this image (its resolution, for example)."""


@runtime_checkable
class Extractor(Protocol):
    """Turns a grayscale image into a minutiae template.

    Attributes:
        version: version string of the algorithm (recorded; part of the cache key).
        template_format: name of the native format its templates carry
            (``"minutiae"`` when they carry standard minutiae only).
    """

    version: str
    template_format: str

    def extract(self, image: np.ndarray, dpi: float) -> Template:
        """``image`` is a 2-D uint8 array (0 = black), ``dpi`` its resolution."""
        ...


@runtime_checkable
class QualityAssessor(Protocol):
    """Gives a grayscale image a quality score.

    Attributes:
        version: version string of the algorithm (scores of different versions differ).
        score_range: ``(lowest, highest)`` score it gives; higher is better quality. A value
            outside it (an error code such as NFIQ 2's 255) or not finite is recorded as a
            failure of that image, never as a quality.
    """

    version: str
    score_range: tuple[float, float]

    def assess(self, image: np.ndarray, dpi: float) -> float:
        """``image`` is a 2-D uint8 array (0 = black), ``dpi`` its resolution."""
        ...


#: Optional hooks the engine uses when a plugin has them (and only these: the engine
#: discovers nothing else). Extractors and quality assessors: ``warm_up(dpi)``. Matchers: the rest.
#: ``check_available()`` (static, either kind) returns "" or why the plugin cannot run here.
HOOKS = {
    "warm_up": "one-time set-up (model loading, compilation), called in each worker before any timed "
               "call, so timings measure the work only",
    "prepare": "prepare(template): build and cache the matcher's own form of a template (MCC's cylinders); "
               "the engine calls it once per template and worker, timed apart from the comparisons",
    "compare_many": "compare_many(probe, gallery) -> one score per gallery template (see BatchMatcher)",
    "compare_subset": "compare_subset(probe, gallery, positions) -> the scores of compare_many(probe, "
                      "[gallery[i] for i in positions]); a 1:N cascade calls it with the whole gallery shard and "
                      "the index's candidates, so the matcher can keep the shard prepared as one block",
}


@runtime_checkable
class Matcher(Protocol):
    """Compares two templates and returns a similarity score.

    Attributes:
        version: version string of the algorithm.
        higher_is_better: True when a higher score means more similar.
        accepted_formats: template formats it can compare; ``"minutiae"`` means any
            template with standard minutiae.
    """

    version: str
    higher_is_better: bool
    accepted_formats: tuple[str, ...]

    def compare(self, probe: Template, reference: Template) -> float:
        ...


@runtime_checkable
class BatchMatcher(Matcher, Protocol):
    """A matcher that also compares one probe with many references at once.

    An optional class attribute ``batched = True`` declares that ``compare_many`` computes
    the batch as a whole (its speed per comparison differs from ``compare``'s); a
    ``compare_many`` that loops over ``compare`` leaves it out (see :func:`matcher_hooks`).
    """

    def compare_many(self, probe: Template, gallery: Sequence[Template]) -> np.ndarray:
        ...


@runtime_checkable
class Index(Protocol):
    """1:N pre-selection: built once from a gallery's templates, then asked, per probe, for
    the gallery templates worth comparing (the candidates), within a budget.

    ``build(gallery)`` indexes the templates (their positions 0..n-1 are the ids the index
    returns). ``search(probe, budget)`` returns ``(positions, work)``: at most ``budget``
    distinct positions, best first, and the work it did, in a unit the index names in
    ``work_unit`` (hash-bucket entries visited, distances computed...). A template it does
    not return is not compared: a mate it leaves out is a miss. An optional
    ``memory_bytes()`` reports the built index's size (else the harness counts its arrays);
    an optional ``warm_up()`` (one-time set-up, such as compiling a kernel) is called once
    per worker before its first ``build``, outside the timed build and searches.

    Attributes:
        version: version string of the algorithm.
        accepted_formats: template formats it can index (``"minutiae"``: any template).
        work_unit: what ``work`` counts.
    """

    version: str
    accepted_formats: tuple[str, ...]
    work_unit: str

    def build(self, gallery: Sequence[Template]) -> None:
        ...

    def search(self, probe: Template, budget: int) -> tuple[np.ndarray, int]:
        ...


def matcher_hooks(matcher: Any) -> dict[str, bool]:
    """Which of the declared hooks (:data:`HOOKS`) a matcher has, and whether it declares
    its ``compare_many`` batched; recorded with every run."""
    has = {h: callable(getattr(matcher, h, None)) for h in ("warm_up", "prepare", "compare_many", "compare_subset")}
    has["batched"] = has["compare_many"] and getattr(matcher, "batched", False) is True
    return has


log = logging.getLogger(__name__)


def warm_up(plugin: Any, name: str, *args: Any) -> None:
    """Call the plugin's optional ``warm_up(*args)`` hook, if it has one. A failure is
    logged, not raised (SystemExit too): the timed calls meet, and record, the same problem."""
    hook = getattr(plugin, "warm_up", None)
    if not callable(hook):
        return
    try:
        hook(*args)
    except BaseException as exc:
        log.warning("warm-up of %s%s failed: %s: %s", name, f" at {args[0]} dpi" if args else "",
                    type(exc).__name__, exc)


def get_params(plugin: Any) -> dict[str, Any]:
    """The plugin's hyper-parameters, read from its ``__init__`` signature."""
    params: dict[str, Any] = {}
    try:
        sig = inspect.signature(type(plugin).__init__)
    except (TypeError, ValueError):
        return params
    for name, p in sig.parameters.items():
        if name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        params[name] = getattr(plugin, name, p.default)
    return params


def accepts(matcher: Matcher, template_format: str) -> bool:
    """Can ``matcher`` compare templates of this format?"""
    formats = tuple(getattr(matcher, "accepted_formats", ()))
    return template_format in formats or "minutiae" in formats
