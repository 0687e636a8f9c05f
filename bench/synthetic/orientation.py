"""Fingerprint classes, singular points and the orientation field of a master print.

The orientation field follows the zero-pole model of Sherlock and Monro ("A model for
interpreting fingerprint topology", Pattern Recognition 26(7), 1993) with the piecewise
linear correction of Vizcaya and Gerhardt ("A nonlinear orientation model for global
description of fingerprints", Pattern Recognition 29(7), 1996), as SFinGe does (Cappelli,
Maio, Maltoni, "Synthetic fingerprint-database generation", ICPR 2002). Arches, which have
no singular point, use a smooth analytic hump instead.

Angles follow the ISO convention used everywhere in FingerBench: counter-clockwise from
the x axis as seen on the image (y pointing up), here taken modulo pi because a ridge
orientation has no sign. Positions are in pixels of the master canvas (origin top-left,
y down).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Class names and their frequencies in nature (Wilson, Candela, Watson, "Neural network
#: fingerprint classification", 1994; the proportions SFinGe uses by default), in percent.
CLASS_FREQUENCIES: dict[str, float] = {
    "arch": 3.7,
    "tented_arch": 2.9,
    "left_loop": 33.8,
    "right_loop": 31.7,
    "whorl": 27.9,
}
CLASSES: tuple[str, ...] = tuple(CLASS_FREQUENCIES)

#: Knots of the Vizcaya-Gerhardt correction: 8 directions around each singular point.
_VG_KNOTS = np.linspace(-np.pi, np.pi, 9)


@dataclass(frozen=True)
class SingularPoint:
    """A core or a delta at (x, y) pixels of the master canvas.

    ``correction`` holds the 8 Vizcaya-Gerhardt offsets (radians) added to the argument
    around this point at the directions -pi, -3pi/4, ..., 3pi/4 (linear in between).
    """

    kind: str  # "core" | "delta"
    x: float
    y: float
    correction: tuple[float, ...] = field(default=(0.0,) * 8)

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "x": round(float(self.x), 2), "y": round(float(self.y), 2)}


@dataclass(frozen=True)
class ArchShape:
    """Parameters of the analytic arch: a hump of the ridges centred on ``x0``."""

    x0: float
    width: float
    height: float  # slope amplitude at the top of the print
    y_top: float
    y_bottom: float


@dataclass(frozen=True)
class PatternSpec:
    """What the orientation field of one master print is made of."""

    fingerprint_class: str
    singular_points: tuple[SingularPoint, ...]
    rotation: float  # theta_infinity, radians
    arch: ArchShape | None = None

    @property
    def cores(self) -> list[SingularPoint]:
        return [s for s in self.singular_points if s.kind == "core"]

    @property
    def deltas(self) -> list[SingularPoint]:
        return [s for s in self.singular_points if s.kind == "delta"]


def draw_class(rng: np.random.Generator) -> str:
    """A class drawn at random with the natural frequencies of :data:`CLASS_FREQUENCIES`."""
    p = np.array(list(CLASS_FREQUENCIES.values()), dtype=np.float64)
    return CLASSES[int(rng.choice(len(CLASSES), p=p / p.sum()))]


def class_of(u: float) -> str:
    """The class at quantile ``u`` in [0, 1) of the natural distribution."""
    p = np.array(list(CLASS_FREQUENCIES.values()), dtype=np.float64)
    edges = np.cumsum(p / p.sum())
    return CLASSES[min(int(np.searchsorted(edges, u, side="right")), len(CLASSES) - 1)]


def class_for_finger(seed: int, finger: int) -> str:
    """Class of finger number ``finger`` of the set made with ``seed``.

    The quantiles follow a Weyl sequence (``offset + finger * golden ratio`` modulo 1,
    the offset drawn from the seed), so every run of consecutive fingers, however short,
    has close to the natural proportions, and a finger's class does not depend on how
    many fingers are generated.
    """
    offset = float(np.random.SeedSequence(seed).generate_state(1, np.uint64)[0]) / 2.0**64
    golden = (np.sqrt(5.0) - 1.0) / 2.0
    return class_of((offset + finger * golden) % 1.0)


def _correction(rng: np.random.Generator, amplitude: float) -> tuple[float, ...]:
    # Offsets small enough that the corrected argument stays increasing (|step| < pi/4).
    eps = rng.uniform(-amplitude, amplitude, 8)
    return tuple(float(v) for v in np.clip(eps, -0.38, 0.38))


def draw_pattern(
    rng: np.random.Generator, fingerprint_class: str, cx: float, cy: float, scale: float
) -> PatternSpec:
    """Singular points of a print of ``fingerprint_class`` around the footprint centre
    (cx, cy); ``scale`` is the resolution over 500 dpi (distances are drawn at 500 dpi)."""
    s = scale
    u = rng.uniform
    vg = 0.36
    pts: list[SingularPoint] = []
    arch = None
    if fingerprint_class in ("left_loop", "right_loop"):
        side = 1.0 if fingerprint_class == "left_loop" else -1.0  # delta to the right of a left loop
        core = (cx + s * u(-30, 30) - side * s * u(0, 25), cy + s * u(-70, 0))
        delta = (core[0] + side * s * u(40, 135), core[1] + s * u(75, 160))
        pts = [
            SingularPoint("core", *core, _correction(rng, vg)),
            SingularPoint("delta", *delta, _correction(rng, vg)),
        ]
    elif fingerprint_class == "tented_arch":
        core = (cx + s * u(-25, 25), cy + s * u(-55, 10))
        delta = (core[0] + s * u(-15, 15), core[1] + s * u(40, 100))
        pts = [
            SingularPoint("core", *core, _correction(rng, vg)),
            SingularPoint("delta", *delta, _correction(rng, vg)),
        ]
    elif fingerprint_class == "whorl":
        centre = (cx + s * u(-30, 30), cy + s * u(-55, 10))
        half = s * u(3, 28)
        angle = u(0, np.pi)
        dx, dy = half * np.cos(angle), half * np.sin(angle)
        pts = [
            SingularPoint("core", centre[0] - dx, centre[1] - dy, _correction(rng, vg)),
            SingularPoint("core", centre[0] + dx, centre[1] + dy, _correction(rng, vg)),
            SingularPoint("delta", centre[0] - s * u(65, 130), centre[1] + s * u(65, 150), _correction(rng, vg)),
            SingularPoint("delta", centre[0] + s * u(65, 130), centre[1] + s * u(65, 150), _correction(rng, vg)),
        ]
    elif fingerprint_class == "arch":
        arch = ArchShape(
            x0=cx + s * u(-30, 30),
            width=s * u(50, 90),
            height=u(1.0, 2.2),
            y_top=cy - s * 190,
            y_bottom=cy + s * u(50, 150),
        )
    else:
        raise ValueError(f"unknown fingerprint class {fingerprint_class!r}; known: {', '.join(CLASSES)}")
    # The whole pattern leans a little differently on every finger.
    lean = float(rng.normal(0.0, np.deg2rad(8.0)))
    if pts:
        c, sn = np.cos(lean), np.sin(lean)
        pts = [
            SingularPoint(
                p.kind, cx + c * (p.x - cx) + sn * (p.y - cy), cy - sn * (p.x - cx) + c * (p.y - cy), p.correction
            )
            for p in pts
        ]
    return PatternSpec(fingerprint_class, tuple(pts), rotation=lean + float(u(-0.06, 0.06)), arch=arch)


def _corrected_argument(dx: np.ndarray, dy_up: np.ndarray, correction: tuple[float, ...]) -> np.ndarray:
    alpha = np.arctan2(dy_up, dx)
    eps = np.asarray(correction + correction[:1], dtype=np.float64)  # periodic: g(pi) = g(-pi) + 2 pi
    return alpha + np.interp(alpha, _VG_KNOTS, eps)


def orientation_at(spec: PatternSpec, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Ridge orientation (radians, [0, pi)) of the model at points (x, y), y down."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if spec.arch is not None:
        a = spec.arch
        u = (x - a.x0) / a.width
        # Curvature fades from the fingertip to the flexion crease.
        t = np.clip((a.y_bottom - y) / max(a.y_bottom - a.y_top, 1.0), 0.0, 1.0)
        slope = -a.height * (0.25 + 0.75 * t) * u * np.exp(-0.5 * u * u)
        theta = np.arctan(slope) + spec.rotation
    else:
        theta = np.full(x.shape, spec.rotation, dtype=np.float64)
        for sp in spec.singular_points:
            arg = _corrected_argument(x - sp.x, -(y - sp.y), sp.correction)
            theta += 0.5 * arg if sp.kind == "core" else -0.5 * arg
    return np.mod(theta, np.pi)


def orientation_field(spec: PatternSpec, shape: tuple[int, int]) -> np.ndarray:
    """Ridge orientation (radians, [0, pi)) at every pixel of a canvas of ``shape``."""
    h, w = shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    return orientation_at(spec, x, y)
