"""FingerBench: a benchmark harness for fingerprint minutiae extractors and matchers."""

__version__ = "0.1.0"
