"""``fingerbench check``: run the conformance kit on a plugin, with a verdict per check."""

from __future__ import annotations

import argparse
import difflib
import logging
from typing import Any

from bench.cli.helpstyle import epilog

log = logging.getLogger("fingerbench")


EXAMPLES = [
    "fingerbench check examples/my_extractor.py:CrossingNumber",
    "fingerbench check mcc",
    "fingerbench check my_matcher.py:MyMatcher -e examples/my_extractor.py:CrossingNumber",
]


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "check", help="check that a plugin keeps the plugin contract (conformance kit)",
        description="Run the conformance kit (bench.testing) on an extractor or a matcher: types, "
                    "coordinate and angle conventions judged against synthetic ground truth, parameters, "
                    "determinism, score direction, compare_many, empty templates. Runs in seconds on "
                    "embedded synthetic data; exits 1 when a check fails.",
        epilog=epilog(EXAMPLES),
    )
    p.add_argument("plugin", nargs="+",
                   help="registered name (a name registered as extractor and matcher checks both), "
                        "module:Class, or path/file.py:Class")
    p.add_argument("--kind", choices=["extractor", "matcher"],
                   help="what a module:Class or file.py:Class is (default: from its methods)")
    p.add_argument("--extractor", "-e",
                   help="extractor whose templates a matcher is checked on, when it does not accept "
                        "standard minutiae (default: the extractor registered under the same name)")
    p.add_argument("--param", action="append", metavar="KEY=VALUE", default=[],
                   help="parameter of the plugin being checked")
    return p


def _kinds(args: argparse.Namespace, target: str) -> list[str]:
    from bench.plugins import registry
    from bench.plugins.loading import load_target

    if args.kind:
        return [args.kind]
    if ":" in target:
        obj = load_target(target)
        found = [k for k, method in (("extractor", "extract"), ("matcher", "compare")) if callable(getattr(obj, method, None))]
        if not found:
            raise registry.PluginError(f"{target} has neither extract() (an extractor) nor compare() (a matcher)")
        return found
    found = [k for k in ("extractor", "matcher") if target in registry.names(k)]
    if not found:
        hint = registry.file_hint("plugin", target)  # a file given without :Class
        if hint:
            raise registry.PluginError(hint)
        known = sorted(set(registry.names("extractor")) | set(registry.names("matcher")))
        close = difflib.get_close_matches(target, known, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(repr(c) for c in close)}?" if close else f"known: {', '.join(known)}"
        raise registry.PluginError(f"unknown plugin '{target}' (neither an extractor nor a matcher); {hint}")
    return found


def _build(kind: str, target: str, params: dict[str, Any]) -> Any:
    from bench.plugins.loading import PluginSpec, load_target

    spec = PluginSpec.resolve(kind, target, params)
    needed = getattr(load_target(spec.target), "required_parameters", ())
    if needed and not params:
        log.warning("%s '%s' needs the parameters %s: pass them with --param KEY=VALUE", kind, target,
                    " ".join(needed))
    return spec.build()


def run(args: argparse.Namespace) -> int:
    from bench.plugins import registry
    from bench.testing import check_extractor, check_matcher

    params = registry.parse_params(args.param)
    status = 0
    for target in args.plugin:
        kinds = _kinds(args, target)
        extractor = None
        if "extractor" in kinds:
            extractor = _build("extractor", target, params)
            report = check_extractor(extractor)
            print(report.format())
            status = status or (0 if report.ok else 1)
        if "matcher" in kinds:
            matcher = _build("matcher", target, params)
            helper = _build("extractor", args.extractor, {}) if args.extractor else extractor
            report = check_matcher(matcher, helper)
            print(report.format())
            status = status or (0 if report.ok else 1)
    return status
