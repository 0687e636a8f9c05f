"""The classic minutiae extractor: the textbook pipeline, one step per function.

gray image -> normalisation -> orientation field -> foreground mask -> ridge frequency
-> contextual Gabor enhancement -> reliability and refined mask -> binarisation ->
thinning -> crossing numbers -> structural false-minutiae removal -> border, mask-edge
and close-pair removal -> quality.

Every length is a parameter in millimetres and converted to pixels with the image's
resolution, so 500, 512 and 569 dpi images get the same treatment on the finger.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.template import Template, make_minutiae
from bench.plugins import FailureToEnrol
from extractors.classic import enhancement, frequency, minutiae, orientation, segmentation, skeleton
from extractors.classic.image import MM_PER_INCH, as_image_array, check_contrast, check_dpi, check_size, to_gray


@dataclass
class Intermediate:
    """Every intermediate product of one extraction (for inspection and tests)."""

    gray: np.ndarray
    normalised: np.ndarray
    contrast: np.ndarray
    orientation: np.ndarray
    coherence: np.ndarray
    mask: np.ndarray  # the refined foreground: where minutiae are looked for
    frequency: float
    enhanced: np.ndarray
    coarse_mask: np.ndarray  # the foreground from contrast and coherence alone
    reliability: np.ndarray
    ridges: np.ndarray
    skeleton: np.ndarray
    candidates: minutiae.Candidates


class ClassicExtractor:
    """Classical minutiae extractor (segmentation, orientation, Gabor, thinning, CN).

    Parameters
    ----------
    normalise_sigma_mm : float, default 0.4
        Gaussian scale of the local mean/variance normalisation.
    gradient_sigma_mm : float, default 0.05
        Pre-smoothing before the gradient (about one pixel at 500 dpi).
    orientation_sigma_mm : float, default 0.35
        Averaging scale of the gradient structure tensor.
    orientation_smoothing_mm : float, default 0.8
        Extra smoothing of the doubled-angle orientation field.
    segmentation_threshold : float, default 0.3
        Foreground where the local contrast exceeds this share of the image's 95th
        percentile contrast.
    segmentation_smoothing_mm : float, default 0.6
        Smoothing and morphological scale of the foreground mask.
    frequency_window_mm : float, default 1.6
        Window side of the local ridge-frequency estimate.
    min_ridge_period_mm, max_ridge_period_mm : float, default 0.25, 0.75
        Band of plausible ridge periods (centre to centre of adjacent ridges).
    gabor_orientations : int, default 16
        Orientations in the Gabor filter bank.
    gabor_sigma_across, gabor_sigma_along : float, default 0.45, 0.6
        Gabor envelope standard deviations as multiples of the ridge period.
    reliability_threshold : float, default 0.08 (chosen by the leave-one-database-out protocol)
        After enhancement, the foreground keeps only the areas where the Gabor filters
        kept more than this share of the local energy (a ridge pattern, not noise,
        smudges or the flat rim of the print); 0 turns the refinement off.
    reliability_sigma : float, default 1.0
        Averaging scale of that energy ratio, as a multiple of the ridge period.
    min_blob_mm2 : float, default 0.04
        Ridge blobs and valley holes smaller than this area are removed.
    border_mm : float, default 0.45
        Minutiae closer than this to the print's border are dropped.
    edge_probe_mm : float, default 0
        A ridge ending whose ridge, continued this far beyond the ending, leaves the
        foreground is made by the print's edge and dropped; 0 (the default, as chosen
        by the leave-one-database-out protocol of docs/extractor.md) turns the rule off.
    spur_mm, bridge_mm, short_ridge_mm : float, default 0.3, 0.3, 0.6
        Longest spur, bridge and isolated ridge that count as false structures.
    min_distance_mm : float, default 0.15
        Two minutiae closer than this both go.
    break_distance_mm : float, default 0.45
        Two facing ridge endings closer than this are a broken ridge; both go.
    direction_radius_mm : float, default 0.4
        How far along the skeleton the direction of a minutia is read.
    quality_border_mm : float, default 1.5
        Minutiae closer than this to the border get a proportionally lower quality.
        The quality is the geometric mean of the local ridge coherence and reliability
        (full from a reliability of 0.5), lowered near the border.
    min_quality : float, default 0
        Minutiae of lower quality (0-100) are dropped.
    min_size_mm : float, default 3.0
        Smallest image side accepted.
    min_foreground_mm2 : float, default 10.0
        Smallest foreground area accepted.
    min_coherence : float, default 0.15
        Smallest mean ridge coherence over the foreground accepted (noise is about 0.1,
        fingerprints 0.3 to 0.8).
    min_contrast : float, default 8.0
        Smallest gray-level spread (1st to 99th percentile) accepted.
    max_pixels : int, default 16_000_000
        Largest image accepted.
    """

    version = "1.1"
    template_format = "minutiae"

    def __init__(
        self,
        normalise_sigma_mm: float = 0.4,
        gradient_sigma_mm: float = 0.05,
        orientation_sigma_mm: float = 0.35,
        orientation_smoothing_mm: float = 0.8,
        segmentation_threshold: float = 0.3,
        segmentation_smoothing_mm: float = 0.6,
        frequency_window_mm: float = 1.6,
        min_ridge_period_mm: float = 0.25,
        max_ridge_period_mm: float = 0.75,
        gabor_orientations: int = 16,
        gabor_sigma_across: float = 0.45,
        gabor_sigma_along: float = 0.6,
        reliability_threshold: float = 0.08,
        reliability_sigma: float = 1.0,
        min_blob_mm2: float = 0.04,
        border_mm: float = 0.45,
        edge_probe_mm: float = 0.0,
        spur_mm: float = 0.3,
        bridge_mm: float = 0.3,
        short_ridge_mm: float = 0.6,
        min_distance_mm: float = 0.15,
        break_distance_mm: float = 0.45,
        direction_radius_mm: float = 0.4,
        quality_border_mm: float = 1.5,
        min_quality: float = 0.0,
        min_size_mm: float = 3.0,
        min_foreground_mm2: float = 10.0,
        min_coherence: float = 0.15,
        min_contrast: float = 8.0,
        max_pixels: int = 16_000_000,
    ) -> None:
        self.normalise_sigma_mm = normalise_sigma_mm
        self.gradient_sigma_mm = gradient_sigma_mm
        self.orientation_sigma_mm = orientation_sigma_mm
        self.orientation_smoothing_mm = orientation_smoothing_mm
        self.segmentation_threshold = segmentation_threshold
        self.segmentation_smoothing_mm = segmentation_smoothing_mm
        self.frequency_window_mm = frequency_window_mm
        self.min_ridge_period_mm = min_ridge_period_mm
        self.max_ridge_period_mm = max_ridge_period_mm
        self.gabor_orientations = gabor_orientations
        self.gabor_sigma_across = gabor_sigma_across
        self.gabor_sigma_along = gabor_sigma_along
        self.reliability_threshold = reliability_threshold
        self.reliability_sigma = reliability_sigma
        self.min_blob_mm2 = min_blob_mm2
        self.border_mm = border_mm
        self.edge_probe_mm = edge_probe_mm
        self.spur_mm = spur_mm
        self.bridge_mm = bridge_mm
        self.short_ridge_mm = short_ridge_mm
        self.min_distance_mm = min_distance_mm
        self.break_distance_mm = break_distance_mm
        self.direction_radius_mm = direction_radius_mm
        self.quality_border_mm = quality_border_mm
        self.min_quality = min_quality
        self.min_size_mm = min_size_mm
        self.min_foreground_mm2 = min_foreground_mm2
        self.min_coherence = min_coherence
        self.min_contrast = min_contrast
        self.max_pixels = max_pixels

    def __repr__(self) -> str:
        return f"{type(self).__name__}(version={self.version!r})"

    # ------------------------------------------------------------------------------
    def extract(self, image: Any, dpi: float) -> Template:
        """Minutiae of a fingerprint image; FailureToEnrol when no template can be made."""
        steps = self.run_pipeline(image, dpi)
        c = steps.candidates
        h, w = steps.gray.shape
        m = make_minutiae(c.x, c.y, minutiae.to_iso_angle(c.angle), c.kind, np.round(c.quality))
        return Template(m, width=w, height=h, dpi=check_dpi(dpi))

    def run_pipeline(self, image: Any, dpi: float) -> Intermediate:
        """All steps of :meth:`extract`, returning every intermediate product."""
        dpi = check_dpi(dpi)
        array = as_image_array(image)
        check_size(array.shape, dpi, self.min_size_mm, int(self.max_pixels))
        gray = to_gray(array)
        check_contrast(gray, self.min_contrast)
        px = dpi / MM_PER_INCH  # pixels per millimetre

        normalised, contrast = segmentation.normalise(gray, self.normalise_sigma_mm * px)
        theta, coherence = orientation.orientation_field(
            normalised, self.gradient_sigma_mm * px, self.orientation_sigma_mm * px,
            self.orientation_smoothing_mm * px,
        )
        mask = segmentation.foreground_mask(contrast, coherence, self.segmentation_threshold,
                                            self.segmentation_smoothing_mm * px)
        area_mm2 = float(mask.sum()) / (px * px)
        if area_mm2 < self.min_foreground_mm2:
            raise FailureToEnrol(
                f"no fingerprint found: the foreground covers {area_mm2:.1f} mm^2, "
                f"less than {self.min_foreground_mm2:g} mm^2"
            )
        mean_coherence = float(coherence[mask].mean())
        if mean_coherence < self.min_coherence:
            raise FailureToEnrol(
                f"no ridge pattern found: mean ridge coherence {mean_coherence:.2f} over the foreground, "
                f"less than {self.min_coherence:g}"
            )
        masked = normalised * mask
        freq, _ = frequency.ridge_frequency(masked, mask, int(round(self.frequency_window_mm * px)),
                                            self.min_ridge_period_mm * px, self.max_ridge_period_mm * px)
        period = 1.0 / freq
        enhanced = enhancement.gabor_enhance(masked, mask, theta, freq, int(self.gabor_orientations),
                                             self.gabor_sigma_across * period, self.gabor_sigma_along * period)
        reliability = enhancement.reliability(enhanced, masked, self.reliability_sigma * period)
        coarse_mask = mask
        refined = segmentation.refine_mask(mask, reliability, self.reliability_threshold,
                                           self.segmentation_smoothing_mm * px)
        if float(refined.sum()) / (px * px) >= self.min_foreground_mm2:
            mask = refined  # else too little is reliable: keep the coarse mask rather than fail
        ridges = skeleton.binarise(enhanced, mask, int(round(self.min_blob_mm2 * px * px)))
        skel = skeleton.thin(ridges)
        cn = skeleton.crossing_number(skel)
        graph = skeleton.skeleton_graph(skel, cn)
        cands = minutiae.detect(
            cn, graph, theta,
            spur_px=self.spur_mm * px, bridge_px=self.bridge_mm * px, short_ridge_px=self.short_ridge_mm * px,
            direction_radius_px=max(2, int(round(self.direction_radius_mm * px))),
        )
        cands, border_dist = minutiae.remove_near_border(cands, mask, self.border_mm * px)
        keep = minutiae.remove_close_pairs(cands, self.min_distance_mm * px, self.break_distance_mm * px)
        keep &= minutiae.remove_at_mask_edge(cands, mask, self.edge_probe_mm * px)
        cands, border_dist = cands.select(keep), border_dist[keep]
        cands.quality = minutiae.minutia_quality(cands, coherence, border_dist, self.quality_border_mm * px,
                                                 reliability)
        cands = cands.select(cands.quality >= self.min_quality)
        return Intermediate(gray, normalised, contrast, theta, coherence, mask, freq, enhanced, coarse_mask,
                            reliability, ridges, skel, cands)

