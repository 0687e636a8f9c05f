"""A small minutiae extractor: enhance the ridges, thin them, keep their ends and forks."""
import cv2
import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree
from skimage.morphology import skeletonize

from bench.plugins import FailureToEnrol
from bench.template import Template, make_minutiae


class CrossingNumber:
    version = "0.1"
    template_format = "minutiae"

    def __init__(self, period: float = 9.0, margin: int = 10, min_distance: float = 8.0):
        self.period, self.margin, self.min_distance = period, margin, min_distance  # pixels

    def extract(self, image: np.ndarray, dpi: float) -> Template:
        img = ndi.gaussian_filter(image.astype(float), 1.0)
        gy, gx = np.gradient(img)  # the direction across the ridges, from the gradients around
        gxx, gyy, gxy = (ndi.gaussian_filter(g, 8.0) for g in (gx * gx, gy * gy, gx * gy))
        across = 0.5 * np.arctan2(2 * gxy, gxx - gyy)
        kernels = [cv2.getGaborKernel((25, 25), self.period / 2, t, self.period, 1.0, 0.0)
                   for t in np.arange(8) * np.pi / 8]
        filtered = [cv2.filter2D(img, -1, k - k.mean()) for k in kernels]  # smooth along the ridges
        enhanced = np.choose(np.round(across / (np.pi / 8)).astype(int) % 8, filtered)
        energy = ndi.uniform_filter(enhanced ** 2, 45)  # high where there are ridges
        inside = ndi.binary_erosion(energy > 0.1 * energy.max(), iterations=self.margin)
        skeleton = skeletonize(enhanced < 0)  # ridges are dark
        ring = [np.roll(skeleton, step, (0, 1))  # the 8 neighbours, in turn around the pixel
                for step in [(1, 1), (1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1), (0, 1)]]
        crossings = sum(ring[i] != ring[i - 1] for i in range(8)) // 2  # 1: ridge ending, 3: bifurcation
        ys, xs = np.nonzero(skeleton & inside & ((crossings == 1) | (crossings == 3)))
        close = cKDTree(np.c_[xs, ys]).query_pairs(self.min_distance, output_type="ndarray")
        keep = np.setdiff1d(np.arange(len(xs)), close)  # close pairs are spurs and breaks, not minutiae
        xs, ys = xs[keep], ys[keep]
        if len(xs) < 3:
            raise FailureToEnrol(f"only {len(xs)} minutiae found")
        along = across[ys, xs] + np.pi / 2  # along the ridge, image axes (y down), either sense
        offsets = np.arange(-4, 5)  # sense: towards the skeleton around (the ridge, or a fork's branches)
        to_x = ndi.correlate(skeleton.astype(float), np.tile(offsets, (9, 1)))[ys, xs]
        to_y = ndi.correlate(skeleton.astype(float), np.tile(offsets[:, None], (1, 9)))[ys, xs]
        along += np.pi * (np.cos(along) * to_x + np.sin(along) * to_y < 0)
        kinds = np.where(crossings[ys, xs] == 1, 1, 2)  # ISO types: 1 ridge ending, 2 bifurcation
        return Template(make_minutiae(xs, ys, -along, kinds),  # ISO angles: counter-clockwise, y up
                        width=image.shape[1], height=image.shape[0], dpi=dpi)
