"""Classic minutiae extractor: segmentation, orientation, Gabor enhancement, thinning,
crossing numbers and false-minutiae removal, all scaled by the image's resolution."""

from extractors.classic.extractor import ClassicExtractor

__all__ = ["ClassicExtractor"]
