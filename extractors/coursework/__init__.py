"""The coursework pair: fingerprint-enhancer + fingerprint-feature-extractor as one
extractor (entry point ``coursework``); see :mod:`extractors.coursework.plugins`."""

from extractors.coursework.plugins import CourseworkExtractor

__all__ = ["CourseworkExtractor"]
