"""One-line summaries of a run's metrics for the terminal."""

from __future__ import annotations

from typing import Any


def _pct(x: Any) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


def format_summary(m: dict[str, Any]) -> str:
    acc = m["accuracy"]
    sp = m["speed"]
    op = acc["operating_points"]

    def point(key: str) -> str:
        v = op.get(key, {})
        return _pct(v.get("value")) if v.get("value") is not None else "unresolvable"

    ext_ms = sp["extraction_ms"].get("median")
    cps = sp.get("comparisons_per_second_per_core")
    if ext_ms is None and cps is None and str(sp.get("note", "")).startswith("unknown"):
        speed = "speed unknown (no timings: imported scores)"
    else:
        speed = (f"extraction {'n/a' if ext_ms is None else f'{ext_ms:.1f} ms'} median, "
                 f"{'n/a' if cps is None else f'{cps:,.0f}'} comparisons/s/core")
    line = (
        f"EER {_pct(acc['eer'])} [{_pct(acc['eer_low'])}, {_pct(acc['eer_high'])}] "
        f"FMR100 {point('fmr100')} FMR1000 {point('fmr1000')} ZeroFMR {point('zero_fmr')} "
        f"(genuine {acc['n_genuine']}, impostor {acc['n_impostor']}, "
        f"REJ_ENROLL {m['enrolment']['rej_enroll']}); {speed}"
    )
    q = m.get("quality")
    if q:
        images, erc = q["images"], q["erc"]
        median = images["distribution"]["median"]
        line += (f"; quality {q['plugin']} median {'n/a' if median is None else f'{median:g}'} "
                 f"({images['n_assessed']} of {images['n']} images assessed)")
        if erc:
            x, y = next((a["reject_fraction"], a["fnmr"]) for a in erc["at"] if a["target"] == 0.1)
            line += f", FNMR {_pct(erc['fnmr_start'])} -> {_pct(y)} with {_pct(x)} lowest quality set aside"
    return line
