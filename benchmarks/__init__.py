"""Stand-alone benchmark scripts (not installed with the package); run them from the
project root as ``python -m benchmarks.NAME``."""
