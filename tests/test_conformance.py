"""The conformance kit (bench.testing) on every registered plugin, and on plugins that
break one rule each; ``fingerbench check`` on the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.plugins import registry
from bench.cli import main
from bench.testing import ConformanceError, check_extractor, check_matcher
from bench.testing.results import FAIL, PASS, WARN

import kit_plugins as kp

KIT = Path(kp.__file__)


def _available(kind: str) -> list:
    out = []
    for name in registry.names(kind):
        entry = registry.entry(kind, name)
        ok, reason = entry.availability()
        marks = [] if ok else [pytest.mark.skip(reason=f"{kind} '{name}' is unavailable here: {reason}")]
        out.append(pytest.param(name, marks=marks, id=name))
    return out


def _needs_parameters(cls) -> str:
    needed = getattr(cls, "required_parameters", ())
    return f"needs the parameters {' '.join(needed)}" if needed else ""


# -- every registered plugin -------------------------------------------------------------------
@pytest.mark.parametrize("name", _available("extractor"))
def test_registered_extractor_conforms(name):
    cls = registry.entry("extractor", name).load()
    if _needs_parameters(cls):
        pytest.skip(f"extractor '{name}' {_needs_parameters(cls)} (an external program)")
    report = check_extractor(cls())
    report.raise_if_failed()
    assert report.status_of("returns-template") == PASS


@pytest.mark.parametrize("name", _available("matcher"))
def test_registered_matcher_conforms(name):
    cls = registry.entry("matcher", name).load()
    if _needs_parameters(cls):
        pytest.skip(f"matcher '{name}' {_needs_parameters(cls)} (an external program)")
    extractor = None
    if "minutiae" not in cls.accepted_formats:  # its family's extractor makes its templates
        extractor = registry.entry("extractor", name).load()()
    report = check_matcher(cls(), extractor)
    report.raise_if_failed()
    assert report.status_of("score-direction") == PASS
    assert report.status_of("score-type") == PASS


# -- each rule broken once ---------------------------------------------------------------------
def test_oracle_extractor_passes_every_check():
    report = check_extractor(kp.OracleExtractor())
    assert report.ok, report.format()
    assert {r.status for r in report.results} == {PASS}


@pytest.mark.parametrize("plugin, check, words", [
    (kp.DegreesExtractor, "angles-in-radians", "look like degrees"),
    (kp.DegreesThroughMakeMinutiae, "returns-template", "look like degrees"),
    (kp.FlippedExtractor, "position-convention", "y flipped"),
    (kp.ClockwiseExtractor, "angle-convention", "clockwise"),
    (kp.OutsideExtractor, "minutiae-in-image", "outside the 240x320 image"),
    (kp.ListExtractor, "returns-template", "returned ndarray"),
    (kp.NoDpiExtractor, "returns-template", "dpi"),
    (kp.OneArgumentExtractor, "returns-template", "TypeError"),
    (kp.FloatSizeExtractor, "image-size", "not whole numbers"),
    (kp.RestlessExtractor, "deterministic", "differ"),
    (kp.ForgetfulExtractor, "get-params", "scale"),
])
def test_extractor_that_breaks_a_rule_fails_that_check(plugin, check, words):
    report = check_extractor(plugin())
    assert report.status_of(check) == FAIL, report.format()
    detail = next(r.detail for r in report.results if r.name == check)
    assert words in detail
    with pytest.raises(ConformanceError, match=check):
        report.raise_if_failed()


def test_interface_errors_point_at_the_plugins_line():
    report = check_extractor(kp.NoDpiExtractor())
    detail = next(r.detail for r in report.results if r.name == "returns-template")
    line = next(i for i, text in enumerate(KIT.read_text().splitlines(), 1) if "Template(self.minutiae(image), w, h)" in text)
    assert f"{KIT}:{line}" in detail


def test_nearest_matcher_passes():
    report = check_matcher(kp.NearestMatcher())
    assert report.ok, report.format()
    assert report.status_of("compare-many") == PASS
    assert report.status_of("symmetric") == "info"


@pytest.mark.parametrize("plugin, check, words", [
    (kp.InvertedMatcher, "score-direction", "wrong way round"),
    (kp.StringScoreMatcher, "score-type", "not a number"),
    (kp.BoolScoreMatcher, "score-type", "not a number"),
    (kp.ColumnManyMatcher, "compare-many", "shape (11, 1)"),
    (kp.StringManyMatcher, "compare-many", "not of numbers"),
    (kp.SloppyManyMatcher, "compare-many", "differs from a loop of compare"),
])
def test_matcher_that_breaks_a_rule_fails_that_check(plugin, check, words):
    report = check_matcher(plugin())
    assert report.status_of(check) == FAIL, report.format()
    assert words in next(r.detail for r in report.results if r.name == check)


def test_matcher_that_raises_on_an_empty_template_is_warned():
    report = check_matcher(kp.FragileMatcher())
    assert report.status_of("empty-template") == WARN
    assert "IndexError" in next(r.detail for r in report.results if r.name == "empty-template")
    assert report.ok  # the runner records such comparisons as failed: a warning, not a failure


# -- fingerbench check -------------------------------------------------------------------------
def test_check_command_gives_a_verdict_per_item(capsys):
    assert main(["check", f"{KIT}:OracleExtractor", f"{KIT}:NearestMatcher"]) == 0
    out = capsys.readouterr().out
    assert "pass  position-convention" in out and "pass  compare-many" in out
    assert out.count("conforms") == 2


def test_check_command_exits_non_zero_on_a_failure(capsys):
    assert main(["check", f"{KIT}:FlippedExtractor"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  position-convention" in out and "does not conform (1 check failed)" in out


def test_check_command_refuses_what_is_not_a_plugin(caplog):
    assert main(["check", f"{KIT}:_truth"]) == 2
    assert "neither extract() (an extractor) nor compare() (a matcher)" in caplog.text
    assert main(["check", "bozorth"]) == 2
    assert "did you mean 'bozorth3'" in caplog.text
