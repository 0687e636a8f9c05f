"""``fingerbench list``: plugins, datasets and protocols with their availability."""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("list", help="list extractors, matchers, datasets and protocols",
                       description="List every registered extractor, matcher, dataset and protocol, "
                                   "with its availability and, when unavailable, the reason.")
    p.add_argument("what", nargs="?", choices=["extractors", "matchers", "datasets", "protocols"],
                   help="list only this kind")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def run(args: argparse.Namespace) -> int:
    from bench import datasets, protocols, registry

    out: dict[str, list[dict[str, Any]]] = {}
    for kind in ("extractor", "matcher"):
        rows = []
        for name in registry.names(kind):
            e = registry.entry(kind, name)
            ok, reason = e.availability()
            rows.append({"name": name, "available": ok, "reason": reason, "target": e.target,
                         "package": e.distribution})
        out[kind + "s"] = rows
    out["datasets"] = [
        {"name": name, "available": True, "reason": "", "title": info.title, "dpi": info.dpi,
         "protocols": list(info.protocols)}
        for name, info in sorted(datasets.available().items())
    ]
    out["protocols"] = [{"name": n, "available": True, "reason": "", "description": d}
                        for n, (_, d) in protocols.PROTOCOLS.items()]
    if args.what:
        out = {args.what: out[args.what]}
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    for section, rows in out.items():
        print(f"{section}:")
        for r in rows:
            if r["available"]:
                detail = r.get("title") or r.get("description") or r.get("target") or ""
                print(f"  {r['name']:<24} available    {detail}")
            else:
                print(f"  {r['name']:<24} unavailable  {r['reason']}")
        print()
    return 0
