"""Minutia Cylinder-Code matcher (MCC-Sb cylinders with LSS-R consolidation)."""

from extractors.mcc.matcher import MccMatcher

__all__ = ["MccMatcher"]
