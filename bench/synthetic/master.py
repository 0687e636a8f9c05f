"""Master fingerprints: everything an impression is made from, for one synthetic finger.

A master holds the finger's class and singular points, its orientation and ridge-period
maps, the grown ridge pattern (a smooth field whose sign is ridge/valley), the finger
footprint, and the ground-truth minutiae found on the thinned binary pattern. All
positions are in pixels of the master canvas.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.synthetic.fields import blur, quantize, smooth_noise
from bench.synthetic.minutiae import clean_ridges, extract_minutiae
from bench.synthetic.orientation import PatternSpec, draw_pattern, orientation_field
from bench.synthetic.ridges import Footprint, grow_ridges, period_map

#: Mean ridge period at 500 dpi before its local variations, pixels (0.43 mm; the
#: images' measured median is about 9 px, as on FVC2002 DB1 and DB3).
BASE_PERIOD_500DPI = 8.5
#: Seeds of the ridge growth per square millimetre of canvas: controls how often grown
#: fronts meet out of phase, hence the minutiae density.
SEEDS_PER_MM2 = 1.0
GROWTH_ITERATIONS = 12
#: Amplitude (radians) of the smooth random twist added to the model orientation field.
#: Pure zero-pole fields make prints of one class too alike: with 0.4, BOZORTH3 impostor
#: scores match those of the real FVC B sets (median 7-8, 99th percentile 20-25).
ORIENTATION_NOISE = 0.4


@dataclass
class MasterPrint:
    spec: PatternSpec
    footprint: Footprint
    theta: np.ndarray  # ridge orientation, radians mod pi
    period: np.ndarray  # ridge period, pixels
    ridges: np.ndarray  # smooth ridge field in [-1, 1], ridges > 0 (cleaned topology)
    minutiae: np.ndarray  # MINUTIA_DTYPE, master canvas coordinates
    mean_period: float
    scale: float  # dpi / 500

    @property
    def shape(self) -> tuple[int, int]:
        return self.ridges.shape  # type: ignore[return-value]

    @property
    def fingerprint_class(self) -> str:
        return self.spec.fingerprint_class


def make_master(rng: np.random.Generator, dpi: float, fingerprint_class: str) -> MasterPrint:
    """Draw a master fingerprint of ``fingerprint_class`` at ``dpi``."""
    scale = dpi / 500.0
    cls = fingerprint_class
    hw = scale * rng.uniform(108, 132)
    ht = scale * rng.uniform(150, 180)
    hb = scale * rng.uniform(190, 235)
    margin = int(np.ceil(scale * 20))
    h = int(np.ceil(ht + hb)) + 2 * margin
    w = int(np.ceil(2 * hw)) + 2 * margin
    footprint = Footprint(
        cx=margin + hw,
        cy=margin + ht,
        half_width=hw,
        half_height_top=ht,
        half_height_bottom=hb,
        exponent_top=float(rng.uniform(1.9, 2.3)),
        exponent_bottom=float(rng.uniform(2.6, 3.6)),
    )
    spec = draw_pattern(rng, cls, footprint.cx, footprint.cy, scale)
    base_period = scale * BASE_PERIOD_500DPI * float(rng.uniform(0.88, 1.14))
    # Irregularities of real ridge flow: a smooth random twist (keeps singularities).
    twist = ORIENTATION_NOISE * smooth_noise(rng, (h, w), 75.0 * scale)
    theta = quantize(np.mod(orientation_field(spec, (h, w)) + twist, np.pi))
    period = period_map(rng, spec, (h, w), base_period, scale)
    mm2 = h * w / (dpi / 25.4) ** 2
    seeds = max(4, int(round(SEEDS_PER_MM2 * mm2 * rng.uniform(0.7, 1.3))))
    field = grow_ridges(rng, theta, period, seeds=seeds, iterations=GROWTH_ITERATIONS)
    mean_period = float(np.mean(period))
    binary = clean_ridges(field > 0, mean_period)
    # A smooth field with the cleaned topology: thresholds near 0 keep it, others thin
    # or thicken the ridges (pressure, dryness) as erosion and dilation would.
    smooth = quantize(np.clip(blur(np.where(binary, 1.0, -1.0), 0.22 * mean_period) * 1.25, -1.0, 1.0))
    region = footprint.distance(*np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))) <= 1.0
    minutiae = extract_minutiae(smooth > 0, theta, mean_period, _shrink(region, mean_period * 0.5))
    return MasterPrint(spec, footprint, theta, period, smooth, minutiae, mean_period, scale)


def _shrink(mask: np.ndarray, margin: float) -> np.ndarray:
    from scipy import ndimage

    return ndimage.distance_transform_edt(mask) > margin
