"""Conformance checks of an extractor on the kit's synthetic impressions."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bench.plugins.contract import ContractError, check_template, plugin_location
from bench.plugins import FailureToEnrol
from bench.synthetic.accuracy import DISTANCE_MM, angle_difference_deg, pair_minutiae
from bench.template import Template
from bench.testing.data import KitSample, kit_samples
from bench.testing.params import check_attributes, check_parameters, describe
from bench.testing.results import FAIL, INFO, PASS, SKIP, WARN, ConformanceReport

#: Share of ground-truth minutiae that must be found (on position) before the kit
#: judges an extractor's conventions; below it, conventions are reported as unverified.
MIN_RECALL_FOR_CONVENTIONS = 0.15
#: Angle agreement, in degrees, of a found minutia with its ground-truth partner.
ANGLE_TOLERANCE_DEG = 30.0

#: Position conventions tried against the ground truth: name -> transform(x, y, w, h).
POSITION_CONVENTIONS: dict[str, Callable[[np.ndarray, np.ndarray, int, int], tuple[np.ndarray, np.ndarray]]] = {
    "ISO (origin top-left, y down)": lambda x, y, w, h: (x, y),
    "y flipped (origin bottom-left, y up)": lambda x, y, w, h: (x, h - 1 - y),
    "x and y swapped (row, column)": lambda x, y, w, h: (y, x),
}
#: Angle conventions tried against the ground truth: name -> the ISO angle from a found one.
ANGLE_CONVENTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "ISO (counter-clockwise from the x axis, as seen on the image)": lambda a: a,
    "opposite direction (ISO + 180 degrees, as NIST .xyt)": lambda a: a + math.pi,
    "clockwise (measured with y pointing down)": lambda a: -a,
    "clockwise and opposite": lambda a: math.pi - a,
}


def check_extractor(extractor: Any, samples: tuple[KitSample, ...] | None = None) -> ConformanceReport:
    """Check ``extractor`` (an instance, or a class built with its defaults) against the
    plugin contract on the kit's synthetic impressions; returns a report with one
    verdict per check (``report.raise_if_failed()`` turns failures into an exception)."""
    if isinstance(extractor, type):
        extractor = extractor()
    samples = samples or kit_samples()
    report = ConformanceReport("extractor", describe(extractor))
    check_attributes(report, extractor, {"version": str, "template_format": str})
    check_parameters(report, extractor)
    reads_files = callable(getattr(extractor, "extract_file", None))
    with tempfile.TemporaryDirectory(prefix="fingerbench-kit-") as tmp:
        call = _file_caller(extractor, samples, Path(tmp)) if reads_files else _image_caller(extractor)
        method = "extract_file" if reads_files else "extract"
        outcomes = [_run(call, s, extractor, method) for s in samples]
        templates = _check_outcomes(report, samples, outcomes, method)
        if templates:
            _check_geometry(report, samples, templates)
            _check_storage(report, templates)
            _check_conventions(report, samples, templates)
            _check_determinism(report, call, samples, templates)
        if not reads_files:
            _check_input_unchanged(report, extractor, samples[0])
            _check_blank(report, extractor, samples[0])
    return report


# -- calling the plugin -----------------------------------------------------------------------
def _image_caller(extractor: Any) -> Callable[[KitSample], Any]:
    def call(s: KitSample) -> Any:
        return extractor.extract(s.image.copy(), s.dpi)

    return call


def _file_caller(extractor: Any, samples: tuple[KitSample, ...], folder: Path) -> Callable[[KitSample], Any]:
    """For extractors that read template files: the ground truth written as ISO records."""
    from bench.formats import write_template

    paths = {}
    for s in samples:
        paths[s.id] = folder / f"{s.id}.iso"
        write_template(s.truth, paths[s.id], "iso")

    def call(s: KitSample) -> Any:
        return extractor.extract_file(paths[s.id], s.dpi)

    return call


def _run(call: Callable[[KitSample], Any], s: KitSample, plugin: Any, method: str) -> tuple[str, Any]:
    """("ok", result) | ("fte", message) | ("error", message with the plugin's file:line)."""
    try:
        return "ok", call(s)
    except FailureToEnrol as exc:
        return "fte", str(exc)
    except Exception as exc:
        where = plugin_location(exc, plugin, method)
        return "error", f"{type(exc).__name__}: {exc}" + (f" (at {where})" if where else "")


def _check_outcomes(report: ConformanceReport, samples: tuple[KitSample, ...],
                    outcomes: list[tuple[str, Any]], method: str) -> dict[int, Template]:
    n = len(samples)
    errors = [(i, v) for i, (k, v) in enumerate(outcomes) if k == "error"]
    ftes = [(i, v) for i, (k, v) in enumerate(outcomes) if k == "fte"]
    wrong = [(i, v) for i, (k, v) in enumerate(outcomes) if k == "ok" and not isinstance(v, Template)]
    templates = {i: v for i, (k, v) in enumerate(outcomes) if k == "ok" and isinstance(v, Template)}
    if wrong:
        i, v = wrong[0]
        report.add("returns-template", FAIL, f"{method}() returned {type(v).__name__} for {len(wrong)} of {n} "
                                             f"images (first: {samples[i].id}); it must return a bench.template.Template")
    elif errors:
        i, msg = errors[0]
        report.add("returns-template", FAIL, f"{method}() raised on {len(errors)} of {n} images (first: "
                                             f"{samples[i].id}: {msg}); raise bench.plugins.FailureToEnrol "
                                             f"when no template can be made")
    elif not templates:
        report.add("returns-template", FAIL, f"every one of the {n} synthetic images failed to enrol "
                                             f"(first: {ftes[0][1]})")
    else:
        report.add("returns-template", PASS, f"a Template for {len(templates)} of {n} images")
    if ftes and templates:
        status = WARN if len(ftes) > n // 4 else INFO
        report.add("failures-to-enrol", status, f"{len(ftes)} of {n} easy synthetic images failed to enrol "
                                                f"(first: {samples[ftes[0][0]].id}: {ftes[0][1]})")
    return templates


def _check_geometry(report: ConformanceReport, samples: tuple[KitSample, ...], templates: dict[int, Template]) -> None:
    wrong_size, wrong_dpi, outside, angles = [], [], [], []
    for i, t in templates.items():
        s = samples[i]
        h, w = s.image.shape
        if (t.width, t.height) != (w, h):
            wrong_size.append(f"{s.id}: {t.width}x{t.height}, image {w}x{h}")
        elif not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (t.width, t.height)):
            wrong_size.append(f"{s.id}: width and height are {type(t.width).__name__} and "
                              f"{type(t.height).__name__}, not whole numbers (int)")
        if not math.isclose(t.dpi, s.dpi, rel_tol=1e-6):
            wrong_dpi.append(f"{s.id}: {t.dpi:g}, image {s.dpi:g}")
        try:
            check_template(t, (h, w))
        except ContractError as exc:
            (angles if "angle" in str(exc) else outside).append(f"{s.id}: {exc}")
    report.add("image-size", FAIL if wrong_size else PASS,
               f"Template width/height are not the image's ({wrong_size[0]})" if wrong_size
               else "width and height are those of the image")
    report.add("resolution", FAIL if wrong_dpi else PASS,
               f"Template dpi differs from the dpi passed in ({wrong_dpi[0]})" if wrong_dpi
               else "dpi is the one passed in")
    report.add("minutiae-in-image", FAIL if outside else PASS,
               outside[0] if outside else "every minutia lies in the image")
    report.add("angles-in-radians", FAIL if angles else PASS,
               angles[0] if angles else "every angle lies in [0, 2*pi)")


def _check_storage(report: ConformanceReport, templates: dict[int, Template]) -> None:
    """The runner caches templates as NPZ with JSON metadata: both must survive."""
    for t in templates.values():
        try:
            json.dumps(t.extra)
            back = Template.from_npz_bytes(t.to_npz_bytes())
        except Exception as exc:
            report.add("storable", FAIL, f"the template cannot be cached ({type(exc).__name__}: {exc}); "
                                         f"Template.extra must hold JSON values only")
            return
        if not (np.array_equal(back.minutiae, t.minutiae) and back.native == t.native):
            report.add("storable", FAIL, "a template read back from the cache differs from the one returned")
            return
    report.add("storable", PASS, "templates survive the template cache (NPZ + JSON) unchanged")


def _pairs(found: Template, truth: Template, position: Callable) -> tuple[Any, Template]:
    m = found.minutiae.copy()
    x, y = position(m["x"].astype(np.float64), m["y"].astype(np.float64), truth.width, truth.height)
    m["x"], m["y"] = x, y
    moved = Template(m, max(found.width, 1), max(found.height, 1), found.dpi)
    return pair_minutiae(moved, truth), moved


def _check_conventions(report: ConformanceReport, samples: tuple[KitSample, ...],
                       templates: dict[int, Template]) -> None:
    with_minutiae = {i: t for i, t in templates.items() if len(t)}
    if not with_minutiae:
        report.add("position-convention", SKIP, "the templates carry no standard minutiae")
        report.add("angle-convention", SKIP, "the templates carry no standard minutiae")
        return
    n_truth = sum(len(samples[i].truth) for i in with_minutiae)
    found_by: dict[str, int] = {}
    pairings: dict[str, list] = {}
    for name, transform in POSITION_CONVENTIONS.items():
        pairs = [(_pairs(t, samples[i].truth, transform), samples[i].truth) for i, t in with_minutiae.items()]
        pairings[name] = pairs
        found_by[name] = sum(int(p.found_index.size) for (p, _), _ in pairs)
    iso = next(iter(POSITION_CONVENTIONS))
    best = max(found_by, key=found_by.get)
    recall = {k: v / max(n_truth, 1) for k, v in found_by.items()}
    if best != iso and recall[best] >= MIN_RECALL_FOR_CONVENTIONS and found_by[best] > 1.5 * found_by[iso]:
        report.add("position-convention", FAIL,
                   f"minutiae match the ground truth when read as {best} ({recall[best]:.0%} found) rather than "
                   f"ISO ({recall[iso]:.0%}); positions are pixels from the top-left corner, y down")
        pairs_for_angles = pairings[best]
    elif recall[iso] < MIN_RECALL_FOR_CONVENTIONS:
        report.add("position-convention", WARN,
                   f"only {recall[iso]:.0%} of the ground-truth minutiae were found within "
                   f"{DISTANCE_MM:g} mm on the easy synthetic images; conventions cannot be verified")
        report.add("angle-convention", SKIP, "too few minutiae agree with the ground truth to judge angles")
        return
    else:
        report.add("position-convention", PASS,
                   f"ISO: {recall[iso]:.0%} of the ground-truth minutiae found within {DISTANCE_MM:g} mm")
        pairs_for_angles = pairings[iso]
    found_angles, truth_angles = [], []
    for (p, moved), truth in pairs_for_angles:
        found_angles.append(moved.minutiae["angle"][p.found_index].astype(np.float64))
        truth_angles.append(truth.minutiae["angle"][p.truth_index].astype(np.float64))
    fa, ta = np.concatenate(found_angles), np.concatenate(truth_angles)
    agree = {name: float(np.mean(angle_difference_deg(np.mod(to_iso(fa), 2 * math.pi), ta) <= ANGLE_TOLERANCE_DEG))
             for name, to_iso in ANGLE_CONVENTIONS.items()}
    iso_a = next(iter(ANGLE_CONVENTIONS))
    best_a = max(agree, key=agree.get)
    axis = float(np.mean(np.minimum(angle_difference_deg(fa, ta), angle_difference_deg(fa + math.pi, ta))
                         <= ANGLE_TOLERANCE_DEG))
    if best_a != iso_a and agree[best_a] >= 0.5 and agree[best_a] > agree[iso_a] + 0.25:
        report.add("angle-convention", FAIL,
                   f"angles agree with the ground truth when read as {best_a} ({agree[best_a]:.0%} within "
                   f"{ANGLE_TOLERANCE_DEG:g} degrees) rather than ISO ({agree[iso_a]:.0%}); angles are radians "
                   f"counter-clockwise from the x axis as seen on the image (up is pi/2)")
    elif agree[iso_a] >= 0.5:
        report.add("angle-convention", PASS, f"ISO: {agree[iso_a]:.0%} of the paired minutiae within "
                                             f"{ANGLE_TOLERANCE_DEG:g} degrees of the ground truth")
    elif axis >= 0.5:
        report.add("angle-convention", WARN, f"directions agree with the ground truth only modulo 180 degrees "
                                             f"({axis:.0%} on the axis, {agree[iso_a]:.0%} with the sense)")
    else:
        report.add("angle-convention", WARN, f"only {agree[iso_a]:.0%} of the paired minutiae point within "
                                             f"{ANGLE_TOLERANCE_DEG:g} degrees of the ground truth, under any "
                                             f"convention tried")


def _check_determinism(report: ConformanceReport, call: Callable[[KitSample], Any], samples: tuple[KitSample, ...],
                       templates: dict[int, Template]) -> None:
    i = min(templates)
    try:
        again = call(samples[i])
    except Exception as exc:
        report.add("deterministic", FAIL, f"a second extraction of {samples[i].id} raised {type(exc).__name__}: {exc}")
        return
    first = templates[i]
    same = isinstance(again, Template) and np.array_equal(again.minutiae, first.minutiae) \
        and again.native == first.native
    report.add("deterministic", PASS if same else FAIL,
               "the same image gives the same template" if same else
               f"two extractions of {samples[i].id} differ ({len(first)} and "
               f"{len(again) if isinstance(again, Template) else '?'} minutiae); results are cached per image, "
               f"so an extractor must be deterministic")


def _check_input_unchanged(report: ConformanceReport, extractor: Any, s: KitSample) -> None:
    image = s.image.copy()
    try:
        extractor.extract(image, s.dpi)
    except Exception:
        pass
    same = np.array_equal(image, s.image)
    report.add("input-unchanged", PASS if same else FAIL,
               "the image passed in is left as it was" if same else
               "extract() modified the image passed in; work on a copy")


def _check_blank(report: ConformanceReport, extractor: Any, s: KitSample) -> None:
    blank = np.full_like(s.image, 255)
    try:
        t = extractor.extract(blank, s.dpi)
    except FailureToEnrol:
        report.add("blank-image", PASS, "a blank image is a failure to enrol")
        return
    except Exception as exc:
        where = plugin_location(exc, extractor, "extract")
        report.add("blank-image", WARN, f"a blank image raised {type(exc).__name__}: {exc}"
                                        + (f" (at {where})" if where else "")
                                        + "; raise FailureToEnrol instead, so it counts as a failure to enrol")
        return
    if not isinstance(t, Template):
        report.add("blank-image", FAIL, f"a blank image gave {type(t).__name__}, not a Template")
    else:
        report.add("blank-image", PASS if len(t) <= 5 else WARN,
                   f"a blank image gives a template with {len(t)} minutiae"
                   + ("" if len(t) <= 5 else " (spurious minutiae on an empty image)"))

