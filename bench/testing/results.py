"""Verdicts of the conformance kit: one per check, gathered in a report."""

from __future__ import annotations

from dataclasses import dataclass, field

PASS = "pass"
FAIL = "FAIL"
WARN = "warn"
INFO = "info"
SKIP = "skip"
STATUSES = (PASS, FAIL, WARN, INFO, SKIP)


class ConformanceError(AssertionError):
    """A plugin failed at least one check of the kit (the message lists them)."""


@dataclass(frozen=True)
class CheckResult:
    """The verdict of one check: ``status`` is one of :data:`STATUSES`; ``detail`` says
    what was seen, and for a failure what to change."""

    name: str
    status: str
    detail: str

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown check status {self.status!r}")


@dataclass
class ConformanceReport:
    """All verdicts of one plugin. ``ok`` is true when no check failed (warnings and
    notes do not fail a plugin)."""

    kind: str  # "extractor" | "matcher"
    plugin: str
    results: list[CheckResult] = field(default_factory=list)

    def add(self, name: str, status: str, detail: str) -> CheckResult:
        result = CheckResult(name, status, detail)
        self.results.append(result)
        return result

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if r.status == FAIL]

    def status_of(self, name: str) -> str | None:
        """The status of the check ``name`` (None if it did not run)."""
        for r in self.results:
            if r.name == name:
                return r.status
        return None

    def format(self) -> str:
        """A readable verdict per check, then a one-line conclusion."""
        width = max((len(r.name) for r in self.results), default=0)
        lines = [f"{self.kind} {self.plugin}:"]
        for r in self.results:
            lines.append(f"  {r.status:<4}  {r.name:<{width}}  {r.detail}")
        n_fail = len(self.failures)
        verdict = "conforms" if self.ok else f"does not conform ({n_fail} check{'s' * (n_fail != 1)} failed)"
        for status, one, many in ((WARN, "warning", "warnings"), (SKIP, "check skipped", "checks skipped")):
            n = sum(r.status == status for r in self.results)
            if n:
                verdict += f"; {n} {one if n == 1 else many}"
        lines.append(f"  => {self.plugin} {verdict}")
        return "\n".join(lines)

    def raise_if_failed(self) -> None:
        """Raise :class:`ConformanceError` listing the failed checks, if any."""
        if not self.ok:
            raise ConformanceError(self.format())
