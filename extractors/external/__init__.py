"""External programs with the FVC executable contract (ENROLL / MATCH), benchmarked
like Python plugins: see :mod:`extractors.external.fvc`."""

from extractors.external.fvc import ExternalProgramError, FvcExecutableExtractor, FvcExecutableMatcher

__all__ = ["ExternalProgramError", "FvcExecutableExtractor", "FvcExecutableMatcher"]
