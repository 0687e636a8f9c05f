"""Conformance checks of a matcher on templates of the kit's synthetic impressions."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from bench.plugins.contract import ContractError, check_score, check_scores, plugin_location
from bench.plugins import ComparisonFailed, FailureToEnrol, accepts
from bench.template import MINUTIAE_FORMAT, Template, make_minutiae
from bench.testing.data import KitSample, genuine_pairs, impostor_pairs, kit_samples
from bench.testing.params import check_attributes, check_parameters, describe
from bench.testing.results import FAIL, INFO, PASS, SKIP, WARN, ConformanceReport

#: Relative difference under which two scores count as equal (batched and single calls).
SCORE_RTOL = 1e-6


def check_matcher(matcher: Any, extractor: Any = None,
                  samples: tuple[KitSample, ...] | None = None) -> ConformanceReport:
    """Check ``matcher`` (an instance, or a class built with its defaults) against the
    plugin contract. Templates are the synthetic ground truth when the matcher accepts
    standard minutiae, else those ``extractor`` makes of the kit's images."""
    if isinstance(matcher, type):
        matcher = matcher()
    if isinstance(extractor, type):
        extractor = extractor()
    samples = samples or kit_samples()
    report = ConformanceReport("matcher", describe(matcher))
    check_attributes(report, matcher, {"version": str, "higher_is_better": bool, "accepted_formats": tuple})
    check_parameters(report, matcher)
    templates = _templates(report, matcher, extractor, samples)
    if templates is None:
        return report
    genuine = [p for p in genuine_pairs(samples) if p[0] in templates and p[1] in templates]
    impostor = [p for p in impostor_pairs(samples) if p[0] in templates and p[1] in templates]
    scores = _check_scores(report, matcher, templates, genuine + impostor)
    if scores is None:
        return report
    _check_determinism(report, matcher, templates, genuine[:3] + impostor[:3], scores)
    _check_direction(report, matcher, [scores[p] for p in genuine], [scores[p] for p in impostor])
    _check_batch(report, matcher, templates, scores)
    _check_symmetry(report, matcher, templates, genuine[:4] + impostor[:4], scores)
    _check_small_templates(report, matcher, templates, [scores[p] for p in genuine])
    return report


def _templates(report: ConformanceReport, matcher: Any, extractor: Any,
               samples: tuple[KitSample, ...]) -> dict[int, Template] | None:
    if extractor is None:
        if not accepts(matcher, MINUTIAE_FORMAT):
            report.add("templates", SKIP, f"the matcher accepts {tuple(getattr(matcher, 'accepted_formats', ()))}, "
                                          f"not standard minutiae: give the extractor of its family")
            return None
        report.add("templates", INFO, f"ground-truth minutiae of {len(samples)} synthetic impressions")
        return {i: s.truth for i, s in enumerate(samples)}
    fmt = getattr(extractor, "template_format", MINUTIAE_FORMAT)
    if not accepts(matcher, fmt):
        report.add("templates", FAIL, f"the matcher does not accept the '{fmt}' templates of {describe(extractor)}")
        return None
    out, failed = {}, []
    for i, s in enumerate(samples):
        try:
            t = extractor.extract(s.image.copy(), s.dpi)
        except (FailureToEnrol, Exception) as exc:  # the extractor's own kit reports it
            failed.append(f"{s.id}: {exc}")
            continue
        if isinstance(t, Template):
            out[i] = t
    if len(out) < len(samples) // 2:
        report.add("templates", SKIP, f"{describe(extractor)} enrolled only {len(out)} of {len(samples)} images"
                                      + (f" (first failure: {failed[0]})" if failed else ""))
        return None
    report.add("templates", INFO, f"{len(out)} templates made by {describe(extractor)}")
    return out


def _call(matcher: Any, probe: Template, reference: Template) -> float:
    return check_score(matcher.compare(probe, reference))


def _check_scores(report: ConformanceReport, matcher: Any, templates: dict[int, Template],
                  pairs: list[tuple[int, int]]) -> dict[tuple[int, int], float] | None:
    scores: dict[tuple[int, int], float] = {}
    failed = []
    for a, b in pairs:
        try:
            scores[(a, b)] = _call(matcher, templates[a], templates[b])
        except ContractError as exc:
            where = plugin_location(None, matcher, "compare")
            report.add("score-type", FAIL, f"{exc}" + (f" (compare defined at {where})" if where else ""))
            return None
        except Exception as exc:
            failed.append(f"{type(exc).__name__}: {exc} (at {plugin_location(exc, matcher, 'compare')})")
    if not scores:
        report.add("score-type", FAIL, f"every comparison raised (first: {failed[0]})")
        return None
    report.add("score-type", PASS, f"compare() returns a number ({len(scores)} comparisons)")
    if failed:
        report.add("comparisons-failed", WARN, f"{len(failed)} of {len(pairs)} comparisons raised (first: {failed[0]})")
    bad = [s for s in scores.values() if not math.isfinite(s)]
    report.add("finite-scores", WARN if bad else PASS,
               f"{len(bad)} scores are {bad[0]} (recorded as failed comparisons)" if bad else "every score is finite")
    return scores


def _check_determinism(report: ConformanceReport, matcher: Any, templates: dict[int, Template],
                       pairs: list[tuple[int, int]], scores: dict[tuple[int, int], float]) -> None:
    differ = []
    for p in pairs:
        if p not in scores:
            continue
        try:
            again = _call(matcher, templates[p[0]], templates[p[1]])
        except Exception as exc:
            differ.append(f"a second call raised {type(exc).__name__}: {exc}")
            continue
        if not _same(again, scores[p]):
            differ.append(f"{scores[p]!r} then {again!r}")
    report.add("deterministic", FAIL if differ else PASS,
               f"the same pair gives different scores: {differ[0]}" if differ else "the same pair gives the same score")


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=SCORE_RTOL, abs_tol=1e-12)


def _check_direction(report: ConformanceReport, matcher: Any, genuine: list[float], impostor: list[float]) -> None:
    g = np.array([s for s in genuine if math.isfinite(s)])
    i = np.array([s for s in impostor if math.isfinite(s)])
    if g.size == 0 or i.size == 0:
        report.add("score-direction", SKIP, "no finite genuine or impostor score")
        return
    higher = bool(getattr(matcher, "higher_is_better", True))
    sg, si = (g, i) if higher else (-g, -i)
    # Probability that a genuine score beats an impostor one in the declared direction.
    auc = float(np.mean((sg[:, None] > si[None, :]) + 0.5 * (sg[:, None] == si[None, :])))
    words = "higher" if higher else "lower"
    detail = (f"declared {words} is more similar; genuine mean {g.mean():.4g}, impostor mean {i.mean():.4g}; "
              f"a genuine score beats an impostor one in {auc:.0%} of cases")
    if auc < 0.5 and (sg.mean() < si.mean()):
        report.add("score-direction", FAIL, detail + " (is higher_is_better the wrong way round?)")
    elif auc < 0.75:
        report.add("score-direction", WARN, detail + " (weak separation on easy synthetic prints)")
    else:
        report.add("score-direction", PASS, detail)


def _check_batch(report: ConformanceReport, matcher: Any, templates: dict[int, Template],
                 scores: dict[tuple[int, int], float]) -> None:
    many = getattr(matcher, "compare_many", None)
    if not callable(many):
        report.add("compare-many", SKIP, "no compare_many (the runner calls compare for each pair)")
        return
    keys = sorted(templates)
    probe, gallery_ids = keys[0], keys[1:]
    loop = []
    for r in gallery_ids:
        try:
            loop.append(scores.get((probe, r)) if (probe, r) in scores else _call(matcher, templates[probe], templates[r]))
        except Exception:
            loop.append(float("nan"))
    try:
        batch = check_scores(many(templates[probe], [templates[r] for r in gallery_ids]), len(gallery_ids))
    except ContractError as exc:
        report.add("compare-many", FAIL, str(exc))
        return
    except Exception as exc:
        report.add("compare-many", FAIL, f"compare_many raised {type(exc).__name__}: {exc} "
                                         f"(at {plugin_location(exc, matcher, 'compare_many')})")
        return
    differ = [(k, b, s) for k, (b, s) in enumerate(zip(batch, loop)) if not _same(float(b), float(s))]
    if differ:
        k, b, s = differ[0]
        report.add("compare-many", FAIL, f"compare_many differs from a loop of compare on {len(differ)} of "
                                         f"{len(loop)} references (first: {b!r} against {s!r})")
    else:
        report.add("compare-many", PASS, f"equal to a loop of compare on {len(loop)} references")


def _check_symmetry(report: ConformanceReport, matcher: Any, templates: dict[int, Template],
                    pairs: list[tuple[int, int]], scores: dict[tuple[int, int], float]) -> None:
    diffs = []
    for a, b in pairs:
        if (a, b) not in scores:
            continue
        try:
            back = _call(matcher, templates[b], templates[a])
        except Exception:
            continue
        diffs.append(abs(back - scores[(a, b)]))
    if not diffs:
        report.add("symmetric", SKIP, "no pair could be compared both ways")
    elif max(diffs) <= 1e-9:
        report.add("symmetric", INFO, "symmetric: compare(a, b) == compare(b, a)")
    else:
        report.add("symmetric", INFO, f"not symmetric (up to {max(diffs):.4g} apart on {len(diffs)} pairs): FVC "
                                      f"pairs are unordered, so scores depend on which impression is the probe")


def _check_small_templates(report: ConformanceReport, matcher: Any, templates: dict[int, Template],
                           genuine: list[float]) -> None:
    ref = templates[min(templates)]
    empty = Template(make_minutiae([], [], []), ref.width, ref.height, ref.dpi)
    m = ref.minutiae[:1]
    one = Template(make_minutiae(m["x"], m["y"], m["angle"], m["type"], m["quality"]), ref.width, ref.height, ref.dpi)
    finite = [s for s in genuine if math.isfinite(s)]
    higher = bool(getattr(matcher, "higher_is_better", True))
    typical = float(np.median(finite)) if finite else None
    for name, small in (("empty-template", empty), ("one-minutia-template", one)):
        notes, worst = [], None
        for probe, reference, side in ((small, ref, "probe"), (ref, small, "reference")):
            try:
                s = _call(matcher, probe, reference)
            except ComparisonFailed as exc:
                notes.append(f"as {side}: ComparisonFailed ({exc})")
                continue
            except ContractError as exc:
                worst = FAIL
                notes.append(f"as {side}: {exc}")
                continue
            except Exception as exc:
                worst = worst or WARN
                notes.append(f"as {side}: {type(exc).__name__}: {exc} (at {plugin_location(exc, matcher, 'compare')}); "
                             f"raise ComparisonFailed or return a low score")
                continue
            suspicious = typical is not None and math.isfinite(s) and ((s >= typical) if higher else (s <= typical))
            if suspicious and name == "empty-template":
                worst = worst or WARN
                notes.append(f"as {side}: {s!r}, as similar as a typical genuine pair ({typical:.4g})")
            else:
                notes.append(f"as {side}: {s!r}")
        report.add(name, worst or PASS, "; ".join(notes))
