"""Reports of runs: HTML (self-contained), Markdown, CSV and JSON tables.

``write_report(runs, out)`` is the entry point (see :mod:`bench.report.writer`); the
modules split the work: :mod:`~bench.report.rundata` reads and checks run directories,
:mod:`~bench.report.summary` computes the numbers (indicators, thresholds), :mod:`~bench.report.plots`
draws (PNG, SVG, PDF), :mod:`~bench.report.worst` renders the worst errors,
:mod:`~bench.report.tables` (CSV, Markdown, LaTeX) and :mod:`~bench.report.html` write them out, and
:mod:`~bench.report.citations` collects ``references.bib``.
"""

from bench.report.rundata import RunData, load_run
from bench.report.writer import write_report

__all__ = ["RunData", "load_run", "write_report"]
