"""The worst errors of a run, as image pairs with their minutiae drawn.

Highest-scoring impostor comparisons (the first false matches as the threshold goes
down) and lowest-scoring genuine comparisons (the first false non-matches as it goes
up). Images come from the dataset files named in ``extractions.csv``; minutiae from the
run's cached templates (:func:`bench.store.template_cache.cached_template_path`). When the cache has
been cleared the images are shown without minutiae, and the report says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.report.rundata import RunData
from bench.template import TYPE_BIFURCATION, TYPE_ENDING, Template, TemplateError

#: Height of each image of a worst-error pair, in pixels: large enough to tell the minutiae apart.
THUMB_HEIGHT = 340
# BGR colours of the minutia types: ending, bifurcation, other.
_COLOURS = {TYPE_ENDING: (40, 40, 230), TYPE_BIFURCATION: (220, 120, 0)}
_OTHER = (60, 170, 60)


@dataclass
class ErrorCase:
    """One comparison shown in the report."""

    probe: str
    reference: str
    genuine: bool
    score: float
    rank: int
    files: tuple[str, str]
    image: bytes | None = None      # JPEG of the two images side by side
    notes: list[str] = field(default_factory=list)


def select(run: RunData, k: int) -> tuple[list[ErrorCase], list[ErrorCase]]:
    """The ``k`` highest-scoring impostor and ``k`` lowest-scoring genuine comparisons
    that were scored (failed comparisons have no score to rank)."""
    c = run.comparisons
    ok = c[c["kind"] == "ok"]
    files = dict(zip(run.extractions["sample"], run.extractions["file"].fillna("")))

    def cases(df, ascending: bool, genuine: bool) -> list[ErrorCase]:
        df = df.sort_values("similarity", ascending=ascending, kind="stable").head(k)
        return [ErrorCase(r.probe, r.reference, genuine, float(r.score_value), i + 1,
                          (str(files.get(r.probe, "")), str(files.get(r.reference, ""))))
                for i, r in enumerate(df.itertuples(index=False))]

    return (cases(ok[~ok["genuine"]], False, False), cases(ok[ok["genuine"]], True, True))


def _template(run: RunData, sample: str) -> Template | None:
    from bench.store.template_cache import cached_template_path

    path = cached_template_path(run.manifest, sample)
    if path is None:
        return None
    try:
        return Template.load(path)
    except (OSError, TemplateError):
        return None


def _draw(image: np.ndarray, tpl: Template | None) -> np.ndarray:
    import cv2

    scale = THUMB_HEIGHT / image.shape[0]
    width = max(1, int(round(image.shape[1] * scale)))
    small = cv2.resize(image, (width, THUMB_HEIGHT), interpolation=cv2.INTER_AREA)
    out = cv2.cvtColor(small, cv2.COLOR_GRAY2BGR)
    if tpl is None:
        return out
    m = tpl.minutiae
    sx, sy = width / tpl.width, THUMB_HEIGHT / tpl.height
    for x, y, a, t in zip(m["x"], m["y"], m["angle"], m["type"]):
        colour = _COLOURS.get(int(t), _OTHER)
        px, py = float(x) * sx, float(y) * sy
        centre = (int(round(px)), int(round(py)))
        tip = (int(round(px + 14 * np.cos(a))), int(round(py - 14 * np.sin(a))))  # ISO: y down, CCW
        cv2.circle(out, centre, 5, colour, 2, cv2.LINE_AA)
        cv2.line(out, centre, tip, colour, 2, cv2.LINE_AA)
    return out


def render(run: RunData, case: ErrorCase, have_cache: dict[str, bool]) -> None:
    """Fill ``case.image`` (JPEG) and ``case.notes``; never raises for missing files."""
    import cv2

    panels = []
    for sample, file in zip((case.probe, case.reference), case.files):
        image = cv2.imread(file, cv2.IMREAD_GRAYSCALE) if file and Path(file).is_file() else None
        if image is None:
            case.notes.append(f"image of {sample} not readable at {file or '(no path recorded)'}")
            image = np.full((THUMB_HEIGHT, int(THUMB_HEIGHT * 0.8)), 235, np.uint8)
            panels.append(_draw(image, None))
            continue
        tpl = _template(run, sample)
        if tpl is None:
            have_cache[sample] = False
        panels.append(_draw(image, tpl))
    gap = np.full((THUMB_HEIGHT, 6, 3), 255, np.uint8)
    ok, buf = cv2.imencode(".jpg", np.hstack([panels[0], gap, panels[1]]), [cv2.IMWRITE_JPEG_QUALITY, 85])
    case.image = buf.tobytes() if ok else None


def worst_errors(run: RunData, k: int = 3) -> tuple[list[ErrorCase], list[ErrorCase], str | None]:
    """Select and draw the worst errors; the third item says when minutiae are missing."""
    impostors, genuines = select(run, k)
    have_cache: dict[str, bool] = {}
    for case in impostors + genuines:
        render(run, case, have_cache)
    note = None
    missing = [s for s, ok in have_cache.items() if not ok]
    if missing:
        cache = run.manifest.get("settings", {}).get("cache_dir") or "(not recorded)"
        note = (f"templates of {len(missing)} images are no longer in the template cache {cache}: "
                f"those images are shown without minutiae")
    return impostors, genuines, note
