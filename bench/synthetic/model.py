"""Synthetic minutiae templates made directly, without images, for galleries of any size.

The image generator (:mod:`bench.synthetic`) makes a few images per second; a gallery
of a million templates needs something else. This module draws templates from a
statistical model of minutiae, in two stages, as the image generator does with pixels:

* a **finger** (one per subject, seeded by ``(seed, subject)``): a pattern class and its
  singular points, drawn by :func:`bench.synthetic.orientation.draw_pattern` (zero-pole
  orientation model, natural class frequencies), and the finger's minutiae: a hard-core
  point process (Matern type II: no two minutiae closer than ``min_distance``) inside a
  finger-shaped footprint, each minutia pointing along the ridge orientation at its
  position (either way along it), with Gaussian angular noise, ridge ending or
  bifurcation drawn with the measured shares;
* an **impression** (seeded by ``(seed, subject, impression)``): the part of the finger
  that touched the sensor (an elliptical contact area inside the sensor window),
  a rigid displacement (rotation, translation), a smooth non-linear distortion, missed
  minutiae (dropout), spurious minutiae, position and angle jitter, and type flips.

Two impressions of one finger therefore share most of their minutiae up to a distortion
(mated), and impressions of different fingers share nothing but the statistics
(non-mated). Positions are in pixels at ``dpi`` (500 by default), angles follow the ISO
convention of :mod:`bench.template`.

What this is not: no ridges, no image, no extractor errors that depend on image
quality, no correlation between a finger's minutiae beyond orientation and spacing.
Matchers that use ridge counts, ridge frequency or image-based features see templates
poorer than real ones; accuracy measured on these templates says nothing about accuracy
on real fingerprints. Their purpose is speed and scale: minutiae counts, spatial spread
and angle coherence close to real templates (see :func:`template_statistics` and the
calibration table in the documentation), so a matcher does the same amount of work per
comparison as on real data, and mated searches behave like searches (the mate stands out)
so candidate lists and ranks are meaningful.

Template ids are ``syn:S<subject>_<impression>`` (subject from 1, zero-padded to 7
digits); :func:`parse_id` reads them back, so a template can be rebuilt anywhere from its
id, the model and the seed.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, replace
from typing import Any, Iterable, Sequence

import numpy as np

from bench.synthetic.orientation import PatternSpec, draw_class, draw_pattern, orientation_at
from bench.template import TYPE_BIFURCATION, TYPE_ENDING, Template, make_minutiae

#: Prefix of every synthetic template id and subject id.
PREFIX = "syn:"
_ID = re.compile(r"^syn:S(?P<subject>\d+)_(?P<impression>\d+)$")


@dataclass(frozen=True)
class MinutiaeModel:
    """Parameters of the model; lengths in pixels at 500 dpi, angles in radians.

    The defaults are version 2 of the model (:data:`VERSIONS` lists every version):
    the parameters that minimise the distance between the model's MCC genuine and
    impostor score distributions and those of the ``classic`` extractor on the four
    FVC2000 B sets (all pairs; ``python -m benchmarks.calibration``, which reports the fit
    held out on the FVC2002 B sets): about 38 minutiae per template, small contact areas
    with few missed minutiae and no skin distortion. Version 1 was calibrated only on
    minutiae counts, spacing and angle coherence of the ISO/IEC 19794-2 templates of the
    FVC2002 B sets, and its impostor tail is lighter than real data's.
    """

    version: str = "2"
    width: int = 300
    height: int = 400
    dpi: float = 500.0
    density: float = 1.2e-3  # candidate minutiae per square pixel of finger (before thinning)
    min_distance: float = 8.0  # hard-core distance between two minutiae of a finger
    angle_noise: float = 0.10  # sd of a minutia's direction around the ridge orientation
    ending_share: float = 0.70  # before type flips
    contact_half_width: tuple[float, float] = (45.0, 90.0)  # uniform range of the contact ellipse
    contact_half_height: tuple[float, float] = (140.0, 220.0)
    contact_offset: float = 25.0  # sd of the contact centre around the finger centre
    rotation_sd: float = math.radians(10.0)
    translation_sd: float = 15.0
    distortion: float = 0.0  # largest amplitude of the smooth distortion field
    dropout: tuple[float, float] = (0.0, 0.05)  # uniform range of the share of missed minutiae
    spurious: float = 0.05  # spurious minutiae per visible true minutia (Poisson mean)
    position_jitter: float = 2.0
    angle_jitter: float = math.radians(7.0)
    type_flip: float = 0.15

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def digest(self) -> str:
        """Short stable hash of the parameters (part of a run's identity)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "MinutiaeModel":
        """The model of ``data``: the parameters of its ``version`` (the latest when it
        names none), with the other keys of ``data`` set on top."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown synthetic model parameter(s) {unknown}; known: {sorted(known)}")
        fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        base = model_version(str(fixed.pop("version", LATEST_VERSION)))
        return replace(base, **fixed)


#: Every published version of the model, by number: the parameters that differ from the
#: dataclass defaults (the latest version). A run records the version with every parameter,
#: so a gallery can be drawn again from the model it was drawn from.
VERSIONS: dict[str, dict[str, Any]] = {
    # calibrated for the matcher's work per comparison only (minutiae count, spacing and
    # angle coherence of ISO templates of the FVC2002 B sets); impostor tail too light
    "1": {"density": 0.85e-3, "min_distance": 8.0, "angle_noise": 0.17,
          "contact_half_width": (80.0, 145.0), "contact_half_height": (105.0, 180.0),
          "rotation_sd": math.radians(10.0), "distortion": 6.0, "dropout": (0.05, 0.25), "spurious": 0.10,
          "position_jitter": 2.0, "angle_jitter": math.radians(7.0)},
    # the dataclass defaults: MCC genuine and impostor scores calibrated on FVC2000's B sets
    "2": {},
}
LATEST_VERSION = "2"


def model_version(version: str) -> MinutiaeModel:
    """The model of a published version (``"1"``, ``"2"``); ValueError for any other."""
    if version not in VERSIONS:
        raise ValueError(f"unknown synthetic model version {version!r}; known: {sorted(VERSIONS)}")
    return MinutiaeModel(**{**VERSIONS[version], "version": version})


@dataclass(frozen=True)
class Finger:
    """One synthetic finger: its orientation pattern and its minutiae (finger frame:
    pixels at 500 dpi, origin at the footprint centre, y down)."""

    pattern: PatternSpec
    half_width: float
    half_height_top: float
    half_height_bottom: float
    x: np.ndarray
    y: np.ndarray
    angle: np.ndarray  # ISO convention (counter-clockwise as seen, y down)
    type: np.ndarray


def template_id(subject: int, impression: int) -> str:
    """The id of impression ``impression`` of synthetic subject ``subject``."""
    return f"{PREFIX}S{int(subject):07d}_{int(impression)}"


def subject_id(subject: int) -> str:
    return f"{PREFIX}S{int(subject):07d}"


def parse_id(text: str) -> tuple[int, int] | None:
    """``(subject, impression)`` of a synthetic template id, or None if it is not one."""
    m = _ID.match(text)
    if not m:
        return None
    return int(m["subject"]), int(m["impression"])


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=tuple(int(k) for k in key)))


def _inside_footprint(x: np.ndarray, y: np.ndarray, hw: float, ht: float, hb: float) -> np.ndarray:
    dx = np.abs(x) / hw
    top = y < 0
    hh = np.where(top, ht, hb)
    p = np.where(top, 2.0, 3.0)
    return (dx**p + (np.abs(y) / hh) ** p) <= 1.0


def make_finger(model: MinutiaeModel, seed: int, subject: int) -> Finger:
    """The finger of ``subject``: a deterministic function of (model, seed, subject)."""
    rng = _rng(seed, subject)
    hw = rng.uniform(105, 130)
    ht = rng.uniform(150, 180)
    hb = rng.uniform(190, 235)
    pattern = draw_pattern(rng, draw_class(rng), 0.0, 0.0, 1.0)
    area = 2 * hw * (ht + hb)
    n = int(rng.poisson(model.density * area))
    x = rng.uniform(-hw, hw, n)
    y = rng.uniform(-ht, hb, n)
    keep = _inside_footprint(x, y, hw, ht, hb)
    x, y = x[keep], y[keep]
    # Matern II thinning: a point survives unless an earlier-marked point lies within
    # min_distance of it.
    if x.size > 1:
        mark = rng.random(x.size)
        d2 = (x[:, None] - x[None, :]) ** 2 + (y[:, None] - y[None, :]) ** 2
        close = d2 < model.min_distance**2
        np.fill_diagonal(close, False)
        earlier = mark[None, :] < mark[:, None]
        keep = ~np.any(close & earlier, axis=1)
        x, y = x[keep], y[keep]
    orientation = orientation_at(pattern, x, y)
    flip = rng.random(x.size) < 0.5
    angle = orientation + np.pi * flip + rng.normal(0.0, model.angle_noise, x.size)
    mtype = np.where(rng.random(x.size) < model.ending_share, TYPE_ENDING, TYPE_BIFURCATION).astype(np.uint8)
    return Finger(pattern, hw, ht, hb, x, y, np.mod(angle, 2 * np.pi), mtype)


def _distortion(rng: np.random.Generator, amplitude: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A smooth displacement field: two plane waves per axis, wavelengths 250-600 px."""
    k = rng.uniform(2 * np.pi / 600, 2 * np.pi / 250, (2, 2)) * rng.choice([-1.0, 1.0], (2, 2))
    direction = rng.uniform(0, 2 * np.pi, (2, 2))
    amp = rng.uniform(0, amplitude, (2, 2)) / 2
    phase = rng.uniform(0, 2 * np.pi, (2, 2))
    kx, ky = k * np.cos(direction), k * np.sin(direction)
    return np.stack([kx, ky]), amp, phase


def _displace(x: np.ndarray, y: np.ndarray, field: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    (kx, ky), amp, phase = field
    dx = np.zeros_like(x)
    dy = np.zeros_like(y)
    for j in range(2):
        dx += amp[0, j] * np.sin(kx[0, j] * x + ky[0, j] * y + phase[0, j])
        dy += amp[1, j] * np.sin(kx[1, j] * x + ky[1, j] * y + phase[1, j])
    return x + dx, y + dy


def make_impression(model: MinutiaeModel, seed: int, subject: int, impression: int,
                    finger: Finger | None = None) -> Template:
    """Impression ``impression`` of synthetic ``subject`` as a Template.

    Deterministic in (model, seed, subject, impression); ``finger`` may be passed when
    the caller already made it (it must be ``make_finger(model, seed, subject)``).
    """
    if finger is None:
        finger = make_finger(model, seed, subject)
    rng = _rng(seed, subject, impression)
    # Contact area (finger frame).
    ca = rng.uniform(*model.contact_half_width)
    cb = rng.uniform(*model.contact_half_height)
    cx, cy = rng.normal(0.0, model.contact_offset, 2)
    x, y, angle, mtype = finger.x, finger.y, finger.angle, finger.type
    visible = ((x - cx) / ca) ** 2 + ((y - cy) / cb) ** 2 <= 1.0
    visible &= rng.random(x.size) >= rng.uniform(*model.dropout)
    x, y, angle, mtype = x[visible], y[visible], angle[visible], mtype[visible].copy()
    # Spurious minutiae, in the contact area, roughly along the ridges.
    n_sp = int(rng.poisson(model.spurious * max(x.size, 1)))
    if n_sp:
        r = np.sqrt(rng.random(n_sp))
        phi = rng.uniform(0, 2 * np.pi, n_sp)
        sx, sy = cx + ca * r * np.cos(phi), cy + cb * r * np.sin(phi)
        inside = _inside_footprint(sx, sy, finger.half_width, finger.half_height_top, finger.half_height_bottom)
        sx, sy = sx[inside], sy[inside]
        sa = orientation_at(finger.pattern, sx, sy) + np.pi * (rng.random(sx.size) < 0.5)
        sa = sa + rng.normal(0.0, 0.5, sx.size)
        st = np.where(rng.random(sx.size) < model.ending_share, TYPE_ENDING, TYPE_BIFURCATION).astype(np.uint8)
        x, y = np.concatenate([x, sx]), np.concatenate([y, sy])
        angle, mtype = np.concatenate([angle, sa]), np.concatenate([mtype, st])
    flip = rng.random(mtype.size) < model.type_flip
    mtype[flip] = np.where(mtype[flip] == TYPE_ENDING, TYPE_BIFURCATION, TYPE_ENDING).astype(np.uint8)
    # Skin distortion, then the rigid placement on the sensor (y up for the rotation).
    x, y = _displace(x, y, _distortion(rng, model.distortion))
    rot = rng.normal(0.0, model.rotation_sd)
    tx, ty = rng.normal(0.0, model.translation_sd, 2)
    c, s = math.cos(rot), math.sin(rot)
    u, v = x, -y
    u, v = c * u - s * v, s * u + c * v
    scale = model.dpi / 500.0
    px = (u + tx) * scale + model.width / 2
    py = (-v + ty) * scale + model.height / 2
    angle = angle + rot
    n = px.size
    px = px + rng.normal(0.0, model.position_jitter * scale, n)
    py = py + rng.normal(0.0, model.position_jitter * scale, n)
    angle = angle + rng.normal(0.0, model.angle_jitter, n)
    quality = rng.integers(20, 101, n)
    margin = 4 * scale
    keep = (px >= margin) & (px < model.width - margin) & (py >= margin) & (py < model.height - margin)
    minutiae = make_minutiae(px[keep], py[keep], angle[keep], mtype[keep], quality[keep])
    return Template(minutiae, int(model.width), int(model.height), float(model.dpi))


def make_template(model: MinutiaeModel, seed: int, template: str) -> Template:
    """The template of a synthetic id (``syn:S0000001_1``); ValueError for any other id."""
    parsed = parse_id(template)
    if parsed is None:
        raise ValueError(f"'{template}' is not a synthetic template id (syn:S<subject>_<impression>)")
    return make_impression(model, seed, *parsed)


def make_templates(model: MinutiaeModel, seed: int, ids: Sequence[str]) -> list[Template]:
    """Templates of many synthetic ids; a finger shared by consecutive ids is made once."""
    out: list[Template] = []
    last: tuple[int, Finger] | None = None
    for tid in ids:
        parsed = parse_id(tid)
        if parsed is None:
            raise ValueError(f"'{tid}' is not a synthetic template id (syn:S<subject>_<impression>)")
        subject, impression = parsed
        if last is None or last[0] != subject:
            last = (subject, make_finger(model, seed, subject))
        out.append(make_impression(model, seed, subject, impression, last[1]))
    return out


# ------------------------------------------------------------------ calibration
def template_statistics(templates: Iterable[Template], radius_mm: float = 1.524) -> dict[str, Any]:
    """Statistics that the model is calibrated on, for any set of templates.

    ``count``: minutiae per template (mean, sd, 5/50/95th percentiles);
    ``nearest_px``: distance from a minutia to its nearest neighbour, pixels at 500 dpi
    (5/50/95th percentiles); ``coherence``: mean of cos(2 (theta_i - theta_j)) over
    minutiae less than ``radius_mm`` apart (30 px at 500 dpi): 1 when neighbours share
    their ridge orientation, 0 for random angles; ``spread_px``: median over templates of
    the standard deviation of the positions (pixels at 500 dpi); ``ending_share``: ridge
    endings over endings + bifurcations.
    """
    counts, nearest, coherence, spread = [], [], [], []
    endings = bifurcations = 0
    for t in templates:
        m = t.minutiae
        counts.append(len(m))
        endings += int(np.count_nonzero(m["type"] == TYPE_ENDING))
        bifurcations += int(np.count_nonzero(m["type"] == TYPE_BIFURCATION))
        if len(m) < 2:
            continue
        scale = 500.0 / float(t.dpi)
        xy = np.stack([m["x"], m["y"]], axis=1).astype(np.float64) * scale
        d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
        np.fill_diagonal(d, np.inf)
        nearest.append(d.min(axis=1))
        i, j = np.nonzero(np.triu(d < radius_mm / 25.4 * 500.0, 1))
        coherence.append(np.cos(2 * (m["angle"][i].astype(np.float64) - m["angle"][j])))
        spread.append(float(np.sqrt(xy.var(axis=0).sum())))
    counts_a = np.asarray(counts, dtype=np.float64)
    near = np.concatenate(nearest) if nearest else np.empty(0)
    coh = np.concatenate(coherence) if coherence else np.empty(0)

    def pct(a: np.ndarray) -> list[float] | None:
        return [round(float(v), 2) for v in np.percentile(a, [5, 50, 95])] if a.size else None

    return {
        "templates": int(counts_a.size),
        "count_mean": round(float(counts_a.mean()), 2) if counts_a.size else None,
        "count_sd": round(float(counts_a.std()), 2) if counts_a.size else None,
        "count_p5_50_95": pct(counts_a),
        "nearest_px_p5_50_95": pct(near),
        "coherence": round(float(coh.mean()), 3) if coh.size else None,
        "spread_px": round(float(np.median(spread)), 1) if spread else None,
        "ending_share": round(endings / (endings + bifurcations), 3) if endings + bifurcations else None,
    }
