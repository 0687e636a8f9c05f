"""Impressions of a master print: placement, skin distortion, contact area, pressure and
dryness, noise and background; and the ground truth carried through the same mapping.

Geometry. An impression is defined by its backward mapping from an output pixel ``p`` to
the master canvas: first the inverse of a rigid placement (rotation about the footprint
centre, then translation), giving the point ``q`` of the skin, then the non-linear
distortion of Cappelli ("Modelling plastic distortion in fingerprint images", ICAPR
2001): ``m = q + (S(q) - q) * brake(q)``, where ``S`` is a small rigid motion of the skin
around the contact centre and ``brake`` is 0 in the close-contact region and rises
smoothly to 1 outside it. The image is rendered through that mapping (one remap), and
ground-truth minutiae and singular points are carried by inverting the very same mapping
numerically at their positions, directions by its Jacobian.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from bench.synthetic.fields import blur, quantize, smooth_noise
from bench.synthetic.master import MasterPrint
from bench.template import make_minutiae


@dataclass(frozen=True)
class ImpressionParams:
    """Everything drawn at random for one impression (stored with its ground truth)."""

    rotation_deg: float  # placement, counter-clockwise on the image
    centre_x: float  # where the footprint centre lands in the image, pixels
    centre_y: float
    contact_dx: float  # contact-region centre relative to the footprint centre, pixels
    contact_dy: float
    contact_scale: float  # contact half-axes over footprint half-axes
    skin_dx: float  # rigid motion of the skin outside the close-contact region
    skin_dy: float
    skin_rotation_deg: float
    close_contact_scale: float  # close-contact region half-axes over footprint half-axes
    pressure: float  # ridge threshold shift: > 0 thinner (dry, light), < 0 thicker (wet, heavy)
    pressure_variation: float
    dryness: float  # share of ridge area lost to breaks, about
    wetness: float  # strength of the patches where valleys fill up
    blur_sigma: float
    noise_sigma: float  # grey levels
    background: float
    vignetting: float  # grey levels lost from the centre to the corners
    ridge_level: float

    def to_dict(self) -> dict[str, float]:
        return {k: round(float(v), 4) for k, v in asdict(self).items()}


#: How each random quantity widens with difficulty: (value at difficulty 0, at 1); linear
#: in between. Distances in pixels at 500 dpi, angles in degrees.
VARIATION: dict[str, tuple[float, float]] = {
    "rotation_sigma": (3.0, 17.0),  # placement rotation, standard deviation
    "rotation_limit": (6.0, 35.0),
    "shift_sigma": (5.0, 55.0),  # placement translation, standard deviation
    "contact_min": (1.0, 0.6),  # smallest contact area, relative to the footprint
    "skin_shift_sigma": (1.5, 11.0),  # distortion: rigid motion outside close contact
    "skin_rotation_sigma": (1.0, 7.0),
    "pressure_sigma": (0.06, 0.32),
    "dryness_max": (0.08, 0.6),
    "pressure_variation": (0.05, 0.25),
    "blur_max": (0.6, 1.2),
    "noise_max": (2.5, 10.0),  # grey levels
    "ridge_level_max": (40.0, 85.0),
}


def _level(name: str, d: float) -> float:
    lo, hi = VARIATION[name]
    return lo + (hi - lo) * d


def draw_params(
    rng: np.random.Generator, master: MasterPrint, width: int, height: int, difficulty: float, noise: float
) -> ImpressionParams:
    """Random impression parameters; ``difficulty`` in [0, 1] widens every range."""
    d = difficulty
    s = master.scale
    fp = master.footprint
    limit = _level("rotation_limit", d)
    rot = float(np.clip(rng.normal(0.0, _level("rotation_sigma", d)), -limit, limit))
    spread = s * _level("shift_sigma", d)
    # The fingertip tends to sit near the top of the window, the rest runs off the bottom.
    cy = height / 2.0 + s * rng.uniform(-5.0, 25.0) + rng.normal(0.0, spread)
    cx = width / 2.0 + rng.normal(0.0, spread)
    contact_scale = float(rng.uniform(_level("contact_min", d), 1.15))
    pressure = float(np.clip(rng.normal(0.04, _level("pressure_sigma", d)), -0.35, 0.5))
    wet = float(rng.uniform(0.0, 1.0)) * max(0.0, -pressure) * 2.5
    dry = (float(rng.uniform(0.0, _level("dryness_max", d))) + max(0.0, pressure) * 0.4) * max(0.0, 1.0 - wet)
    skin = s * _level("skin_shift_sigma", d)
    return ImpressionParams(
        rotation_deg=rot,
        centre_x=float(cx),
        centre_y=float(cy),
        contact_dx=float(rng.normal(0.0, 0.08 * fp.half_width)),
        contact_dy=float(rng.normal(0.0, 0.08 * fp.half_height_top)),
        contact_scale=contact_scale,
        skin_dx=float(rng.normal(0.0, skin)),
        skin_dy=float(rng.normal(0.0, skin)),
        skin_rotation_deg=float(rng.normal(0.0, _level("skin_rotation_sigma", d))),
        close_contact_scale=float(rng.uniform(0.25, 0.45)),
        pressure=pressure,
        pressure_variation=_level("pressure_variation", d),
        dryness=float(np.clip(dry, 0.0, 0.75)),
        wetness=float(np.clip(wet, 0.0, 1.0)),
        blur_sigma=float(s * rng.uniform(0.45, _level("blur_max", d))),
        noise_sigma=float(noise * rng.uniform(1.5, _level("noise_max", d))),
        background=float(rng.uniform(172.0, 205.0)),
        vignetting=float(rng.uniform(4.0, 22.0)),
        ridge_level=float(rng.uniform(10.0, _level("ridge_level_max", d))),
    )


class Mapping:
    """The impression's mapping between image pixels and master-canvas pixels."""

    def __init__(self, master: MasterPrint, p: ImpressionParams) -> None:
        fp = master.footprint
        self.c = np.array([fp.cx, fp.cy])
        self.c_img = np.array([p.centre_x, p.centre_y])
        phi = np.deg2rad(p.rotation_deg)
        # Rotation counter-clockwise on the image, acting on (x, row) vectors.
        self.rot = np.array([[np.cos(phi), np.sin(phi)], [-np.sin(phi), np.cos(phi)]])
        psi = np.deg2rad(p.skin_rotation_deg)
        self.skin_rot = np.array([[np.cos(psi), np.sin(psi)], [-np.sin(psi), np.cos(psi)]])
        self.skin_shift = np.array([p.skin_dx, p.skin_dy])
        self.cc = self.c + np.array([p.contact_dx, p.contact_dy])
        half_height = 0.5 * (fp.half_height_top + fp.half_height_bottom)
        self.cc_axes = np.array([fp.half_width, half_height]) * p.close_contact_scale
        self.brake_length = 0.45 * fp.half_width

    # -- skin distortion (in master-canvas coordinates) ----------------------------------
    def _distortion(self, qx: np.ndarray, qy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rx, ry = qx - self.cc[0], qy - self.cc[1]
        e = np.sqrt((rx / self.cc_axes[0]) ** 2 + (ry / self.cc_axes[1]) ** 2)
        outside = np.maximum(e - 1.0, 0.0) * np.minimum(self.cc_axes[0], self.cc_axes[1])
        brake = 1.0 - np.exp(-0.5 * (outside / self.brake_length) ** 2)
        sx = self.skin_rot[0, 0] * rx + self.skin_rot[0, 1] * ry + self.skin_shift[0] - rx
        sy = self.skin_rot[1, 0] * rx + self.skin_rot[1, 1] * ry + self.skin_shift[1] - ry
        return sx * brake, sy * brake

    def skin_from_image(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dx, dy = x - self.c_img[0], y - self.c_img[1]
        inv = self.rot.T
        return self.c[0] + inv[0, 0] * dx + inv[0, 1] * dy, self.c[1] + inv[1, 0] * dx + inv[1, 1] * dy

    def master_from_image(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        qx, qy = self.skin_from_image(x, y)
        dx, dy = self._distortion(qx, qy)
        return qx + dx, qy + dy

    def image_from_master(self, mx: np.ndarray, my: np.ndarray, iterations: int = 30) -> tuple[np.ndarray, np.ndarray]:
        """Invert :meth:`master_from_image` at given points (fixed-point iteration)."""
        qx, qy = np.array(mx, dtype=np.float64), np.array(my, dtype=np.float64)
        for _ in range(iterations):
            dx, dy = self._distortion(qx, qy)
            qx, qy = mx - dx, my - dy
        rx, ry = qx - self.c[0], qy - self.c[1]
        return (
            self.c_img[0] + self.rot[0, 0] * rx + self.rot[0, 1] * ry,
            self.c_img[1] + self.rot[1, 0] * rx + self.rot[1, 1] * ry,
        )

    def image_directions(self, mx: np.ndarray, my: np.ndarray, angle: np.ndarray) -> np.ndarray:
        """ISO angles in the image of directions ``angle`` at master points (mx, my)."""
        if len(mx) == 0:
            return np.zeros(0)
        h = 0.5
        u = np.stack([np.cos(angle), -np.sin(angle)], axis=1)  # (x, row)
        x0, y0 = self.image_from_master(mx, my)
        x1, y1 = self.image_from_master(mx + h * u[:, 0], my + h * u[:, 1])
        return np.mod(np.arctan2(-(y1 - y0), x1 - x0), 2 * np.pi)


@dataclass
class Impression:
    image: np.ndarray  # uint8, height x width
    visible: np.ndarray  # bool, where the finger touched and ground truth is kept
    minutiae: np.ndarray  # MINUTIA_DTYPE, image coordinates
    singular_points: list[dict[str, Any]]
    params: ImpressionParams


def render_impression(
    rng: np.random.Generator,
    master: MasterPrint,
    width: int,
    height: int,
    difficulty: float,
    noise: float = 1.0,
) -> Impression:
    """Draw the parameters of one impression of ``master`` and render it."""
    p = draw_params(rng, master, width, height, difficulty, noise)
    mapping = Mapping(master, p)
    s = master.scale
    period = master.mean_period
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    mx, my = mapping.master_from_image(xx, yy)
    mx, my = quantize(mx, 2.0**-10), quantize(my, 2.0**-10)

    ridges = ndimage.map_coordinates(master.ridges, [my, mx], order=1, mode="constant", cval=-1.0)
    ridges = quantize(ridges, 2.0**-12)

    # Contact region: inside the finger footprint and the contact ellipse.
    fp = master.footprint
    finger = fp.distance(mx, my)
    qx, qy = mapping.skin_from_image(xx, yy)
    ca = np.array([fp.half_width, 0.5 * (fp.half_height_top + fp.half_height_bottom)]) * p.contact_scale
    contact = np.sqrt(((qx - mapping.cc[0]) / ca[0]) ** 2 + ((qy - mapping.cc[1]) / (ca[1] * 1.15)) ** 2)
    # <= 1 inside the contact area; its outline is irregular, as skin does not touch evenly
    border = np.maximum(finger, contact) + 0.035 * smooth_noise(rng, (height, width), 30.0 * s) \
        + 0.015 * smooth_noise(rng, (height, width), 9.0 * s)
    inside = border <= 1.0
    # 0 at the contact border, 1 well inside it
    depth = np.clip((1.0 - border) / 0.1, 0.0, 1.0)

    # Pressure and dryness: a locally varying threshold on the smooth ridge field.
    thr = p.pressure + p.pressure_variation * smooth_noise(rng, (height, width), 45.0 * s)
    thr = thr + 0.2 * (1.0 - depth)  # ridges thin out and fade towards the border
    # Moisture fills the valleys in patches: ridges thicken and merge there.
    wet = p.wetness * np.clip(smooth_noise(rng, (height, width), 22.0 * s) - 0.9, 0.0, None)
    thr = thr - 0.6 * wet
    ink = np.clip((ridges - thr) / 0.35 + 0.5, 0.0, 1.0)
    grain = blur(rng.standard_normal((height, width)), 0.75 * s)
    grain = quantize(grain / (np.std(grain) + 1e-12))
    lumpy = smooth_noise(rng, (height, width), 28.0 * s)
    dry_share = np.clip(p.dryness * (1.0 + 0.6 * lumpy) * (1.0 - np.minimum(wet, 1.0)) + 0.2 * (1.0 - depth), 0.0, 0.95)
    cut = _normal_quantile(1.0 - dry_share)
    holes = np.clip((grain - cut) / 0.5 + 0.5, 0.0, 1.0)
    ink = ink * (1.0 - holes) * (0.82 + 0.18 * np.tanh(blur(rng.standard_normal((height, width)), 1.2 * s) * 3.0))
    ink = np.where(inside, ink * (0.3 + 0.7 * np.sqrt(depth)), 0.0)

    # Grey levels: a light background, darker towards the corners, with faint stains.
    r2 = ((xx - width / 2.0) / (0.75 * width)) ** 2 + ((yy - height / 2.0) / (0.75 * height)) ** 2
    stains = np.clip(np.abs(smooth_noise(rng, (height, width), 14.0 * s)) - 1.6, 0.0, None)
    bg = p.background - p.vignetting * r2 + noise * (
        2.5 * smooth_noise(rng, (height, width), 90.0 * s) + 0.8 * smooth_noise(rng, (height, width), 10.0 * s)
        + 9.0 * stains * np.sign(smooth_noise(rng, (height, width), 60.0 * s))
    )
    img = bg - (bg - p.ridge_level) * ink
    img = blur(img, p.blur_sigma)
    # Sensor noise, weaker on the bare background than where the finger touches.
    where = 0.35 + 0.65 * blur(inside.astype(np.float64), 3.0 * s)
    img = img + p.noise_sigma * where * rng.standard_normal((height, width))
    image = np.clip(np.round(img), 0, 255).astype(np.uint8)

    # Ground truth: master minutiae carried through the mapping, kept where visible.
    # Where ridges are clear enough to show their minutiae: not in the faded rim of the
    # contact area, nor within a ridge period of its edge or of the image border.
    clear = np.pad(inside & (depth >= 0.3), 1)
    visible = ndimage.distance_transform_edt(clear)[1:-1, 1:-1] > 0.6 * period
    m = master.minutiae
    gx, gy = mapping.image_from_master(m["x"].astype(np.float64), m["y"].astype(np.float64))
    ga = mapping.image_directions(m["x"].astype(np.float64), m["y"].astype(np.float64), m["angle"].astype(np.float64))
    gx, gy, ga = quantize(gx, 2.0**-8), quantize(gy, 2.0**-8), quantize(ga, 2.0**-16)
    xi, yi = np.round(gx).astype(np.int64), np.round(gy).astype(np.int64)
    ok = (xi >= 0) & (xi < width) & (yi >= 0) & (yi < height)
    ok[ok] = visible[yi[ok], xi[ok]]
    minutiae = make_minutiae(gx[ok], gy[ok], ga[ok], m["type"][ok], m["quality"][ok])

    sps = []
    for sp in master.spec.singular_points:
        sx, sy = mapping.image_from_master(np.array([sp.x]), np.array([sp.y]))
        x, y = float(sx[0]), float(sy[0])
        xi2, yi2 = int(round(x)), int(round(y))
        vis = 0 <= xi2 < width and 0 <= yi2 < height and bool(inside[yi2, xi2])
        sps.append({"kind": sp.kind, "x": round(x, 2), "y": round(y, 2), "visible": vis})
    return Impression(image, visible, minutiae, sps, p)


def _normal_quantile(p: np.ndarray) -> np.ndarray:
    from scipy.special import ndtri

    return ndtri(np.clip(p, 1e-6, 1 - 1e-6))
