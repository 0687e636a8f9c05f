"""One-line summaries of a run's metrics for the terminal."""

from __future__ import annotations

from typing import Any


def _pct(x: Any) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


def _duration(us: float) -> str:
    return f"{us / 1e3:.2f} ms" if us >= 1e3 else f"{us:.0f} us"


def format_summary(m: dict[str, Any], timing: dict[str, Any] | None = None) -> str:
    """One line for a run's summary (either kind); ``timing``: an identification run's
    session measurements (timing.json), for its throughput."""
    if "n_searches" in m:
        return _identification_line(m, timing)
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
        kinds = sp.get("comparison_us_by_kind") or {}
        medians = {k: (kinds.get(k) or {}).get("median") for k in ("genuine", "impostor")}
        if all(v is not None for v in medians.values()):
            speed += (f" (a comparison takes {_duration(medians['genuine'])} genuine, "
                      f"{_duration(medians['impostor'])} impostor, median)")
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


def _identification_line(m: dict[str, Any], timing: dict[str, Any] | None) -> str:
    """Rank-1, FNIR at FPIR = 1 %, penetration, speed."""
    parts = [f"{m['n_searches']} searches ({m['n_mated']} mated) against {m['gallery_templates']} templates"]
    r1 = m["rank_identification_rate"].get("1")
    if r1 is not None:
        parts.append(f"rank-1 {100 * r1:.2f}%")
    op = m["fnir_at_fpir"].get("rank1", {}).get("0.01")
    if op:
        parts.append(f"FNIR@FPIR=1% {'unresolvable' if op['fnir'] is None else _pct(op['fnir'])}")
    if m.get("penetration_rate") is not None:
        parts.append(f"penetration {100 * m['penetration_rate']:.1f}%")
    sp = m.get("speed") or {}
    if sp.get("median_search_seconds") is not None:
        parts.append(f"search {sp['median_search_seconds']:.3g} s median (1 thread; "
                     f"{sp['median_search_cpu_seconds']:.3g} s CPU)")
    if sp.get("comparisons_per_second_per_core"):
        parts.append(f"{sp['comparisons_per_second_per_core']:.0f} comparisons/s/core")
    thr = (timing or {}).get("throughput", {})
    if thr.get("searches_per_second"):
        parts.append(f"{thr['searches_per_second']:.3g} searches/s on {thr['slots']} workers")
    return "; ".join(parts)
